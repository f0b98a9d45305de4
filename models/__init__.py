"""Deep spatio-temporal fusion networks (EDCSTFN, STTFN, MLFF-GAN), their contract, losses,
registry and model cards. Pure torch: never imports qgis."""

"""Reading and writing LST rasters: product readers, writers, grids, series, the tiler and the output guard."""

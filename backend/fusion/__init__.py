"""Fusion: the method registry, STARFM/ESTARFM, ONNX models, the tiled driver, series and Dask."""

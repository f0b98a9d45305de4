"""LST Fusion backend: pure-Python stages of the MODIS/Landsat LST fusion pipeline.

Never imports qgis: every stage is a plain function that the QGIS glue, the tests
and scripts call alike.
"""

__version__ = "0.6.1"

# Marks this package as LST Fusion's, so the plugin can tell it from another "backend".
LST_FUSION = True

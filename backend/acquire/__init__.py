"""Acquire: MODIS and Landsat LST of an area and period from STAC archives (see :mod:`.download`)."""

"""A small Landsat + MODIS archive for the acquire tests, served by tests/stac_server.py.

Assets are COGs: the real Landsat C2 L2 scene 017036 (ST_B10, QA_PIXEL; clouded, so its date is dropped)
and the real MOD11A1 tile h11v05 (LST_Day_1km, QC_Day; 4 % valid, dropped), plus generated clear dates on
the same grids: a Landsat day whose area spans two rows of one path (a same-day mosaic), a half-clouded
Landsat day, MODIS days on h11v05 and on its neighbour h12v05. The items follow the Planetary Computer's
schemas (collections landsat-c2-l2 and modis-11A1-061).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.warp import transform_bounds
from stac_server import StacServer, iso

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LANDSAT_REAL = SHARED / "landsat_c2l2" / "LC08_L2SP_017036_20130419_20200913_02_T2_"
MODIS_REAL = SHARED / "modis_mod11a1_hdf" / "MOD11A1.A2021227.h11v05.061.2021228105320.hdf"
MODIS_PIXEL = 926.625433055833
MODIS_LEFT, MODIS_TOP, TILE = -20015109.354, 10007554.677, 1200
QA_CLEAR, QA_CLOUD = 21824, 22280
# Landsat DN for a temperature: K = DN * 0.00341802 + 149.
SCALE, OFFSET = 0.00341802, 149.0
LANDSAT_COLLECTION, MODIS_COLLECTION = "landsat-c2-l2", "modis-11A1-061"
# The area: 20 x 35 km in UTM 17N around (-83.2, 34.5), across the two rows of the mosaic day.
AREA_UTM = (300000.0, 3805000.0, 320000.0, 3840000.0)
# A MODIS area across the h11v05 / h12v05 edge (x = -6671703 m), 18 x 9 km.
EDGE_SINU = (-6680703.0, 3800000.0, -6662703.0, 3809000.0)

LANDSAT_DATES = {"real": dt.date(2013, 4, 19), "clear": dt.date(2013, 5, 5), "mosaic": dt.date(2013, 5, 21),
                 "cloudy": dt.date(2013, 6, 6)}
MODIS_DATES = [dt.date(2013, 5, 5), dt.date(2013, 5, 13), dt.date(2013, 5, 21), dt.date(2013, 6, 6)]
MODIS_REAL_DATE = dt.date(2013, 4, 19)


def _cog(path: Path, data: np.ndarray, crs, transform, nodata=None, block: int = 128) -> None:
    with rasterio.open(path, "w", driver="COG", width=data.shape[1], height=data.shape[0], count=1,
                       dtype=data.dtype, crs=crs, transform=transform, nodata=nodata, BLOCKSIZE=block,
                       COMPRESS="DEFLATE", OVERVIEWS="NONE") as dst:
        dst.write(data, 1)


def _field(shape, base_k: float, seed: int) -> np.ndarray:
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    rng = np.random.default_rng(seed)
    return base_k + 6 * np.sin(rows / 37.0) * np.cos(cols / 53.0) + 0.02 * cols + rng.normal(0, 0.3, shape)


def build_assets(folder: Path) -> dict:
    """Write every asset; return the grids needed to describe the items."""
    folder.mkdir(parents=True, exist_ok=True)
    with rasterio.open(f"{LANDSAT_REAL}ST_B10.TIF") as src:
        st, crs, transform = src.read(1), src.crs, src.transform
    with rasterio.open(f"{LANDSAT_REAL}QA_PIXEL.TIF") as src:
        qa = src.read(1)
    _cog(folder / "real_ST_B10.tif", st, crs, transform, 0)
    _cog(folder / "real_QA_PIXEL.tif", qa, crs, transform)
    dn = lambda k: np.clip(np.round((k - OFFSET) / SCALE), 1, 65535).astype(np.uint16)  # noqa: E731
    clear_qa = np.full(st.shape, QA_CLEAR, np.uint16)
    _cog(folder / "clear_ST_B10.tif", dn(_field(st.shape, 300.0, 1)), crs, transform, 0)
    _cog(folder / "clear_QA_PIXEL.tif", clear_qa, crs, transform)
    mosaic = dn(_field(st.shape, 303.0, 2))
    for name, rows in (("row036", slice(0, 300)), ("row037", slice(250, 512))):
        shifted = transform * Affine.translation(0, rows.start)
        _cog(folder / f"{name}_ST_B10.tif", mosaic[rows], crs, shifted, 0)
        _cog(folder / f"{name}_QA_PIXEL.tif", clear_qa[rows], crs, shifted)
    np.save(folder / "mosaic_truth.npy", mosaic)
    cloudy_qa = clear_qa.copy()
    cloudy_qa[:, : int(st.shape[1] * 0.8)] = QA_CLOUD
    _cog(folder / "cloudy_ST_B10.tif", dn(_field(st.shape, 305.0, 3)), crs, transform, 0)
    _cog(folder / "cloudy_QA_PIXEL.tif", cloudy_qa, crs, transform)
    grids = {"landsat": (crs, transform, st.shape)}

    hdf = f'HDF4_EOS:EOS_GRID:"{MODIS_REAL}":MODIS_Grid_Daily_1km_LST:'
    with rasterio.open(hdf + "LST_Day_1km") as src:
        lst, sinu, sinu_t = src.read(1), src.crs, src.transform
    with rasterio.open(hdf + "QC_Day") as src:
        qc = src.read(1)
    _cog(folder / "MOD_real_LST_Day_1km.tif", lst, sinu, sinu_t, 0, 256)
    _cog(folder / "MOD_real_QC_Day.tif", qc, sinu, sinu_t, None, 256)
    for h in (11, 12):
        left, top = MODIS_LEFT + h * TILE * MODIS_PIXEL, MODIS_TOP - 5 * TILE * MODIS_PIXEL
        t = Affine(MODIS_PIXEL, 0, left, 0, -MODIS_PIXEL, top)
        for i, day in enumerate(MODIS_DATES):
            k = _field((TILE, TILE), 298.0 + i, 10 + i + 100 * h)
            _cog(folder / f"MOD_h{h}_{day:%Y%m%d}_LST_Day_1km.tif", np.round(k / 0.02).astype(np.uint16), sinu, t,
                 0, 256)
            _cog(folder / f"MOD_h{h}_{day:%Y%m%d}_QC_Day.tif", np.zeros((TILE, TILE), np.uint8), sinu, t, None, 256)
        grids[f"h{h}"] = (sinu, t, (TILE, TILE))
    grids["modis_real"] = (sinu, sinu_t, lst.shape)
    return grids


def _footprint(crs, transform, shape) -> tuple[list, dict]:
    bounds = rasterio.transform.array_bounds(shape[0], shape[1], transform)
    west, south, east, north = transform_bounds(crs, "EPSG:4326", *bounds, densify_pts=21)
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return [west, south, east, north], {"type": "Polygon", "coordinates": [ring]}


def _asset(url: str, key: str, dtype: str, scale=None, offset=None, nodata=None, unit=None) -> dict:
    band = {"data_type": dtype, "spatial_resolution": 30}
    band.update({k: v for k, v in (("scale", scale), ("offset", offset), ("nodata", nodata), ("unit", unit))
                 if v is not None})
    return {"href": url, "type": "image/tiff; application=geotiff; profile=cloud-optimized", "title": key,
            "roles": ["data"], "raster:bands": [band]}


def landsat_item(server: StacServer, ident: str, day: dt.date, asset: str, grid, row: int, cloud: float,
                 platform: str = "landsat-8") -> dict:
    crs, transform, shape = grid
    bbox, geometry = _footprint(crs, transform, shape)
    lwir = _asset(server.asset_url(f"{asset}_ST_B10.tif"), "Surface temperature", "uint16", SCALE, OFFSET, 0,
                  "kelvin")
    lwir["eo:bands"] = [{"name": "TIRS_B10", "common_name": "lwir11", "center_wavelength": 10.9}]
    lwir["roles"] = ["data", "temperature"]
    qa = _asset(server.asset_url(f"{asset}_QA_PIXEL.tif"), "Pixel quality", "uint16", unit="bit index")
    qa["roles"] = ["cloud", "cloud-shadow", "snow-ice", "water-mask"]
    return {"type": "Feature", "stac_version": "1.0.0", "id": ident, "bbox": bbox, "geometry": geometry,
            "stac_extensions": ["https://stac-extensions.github.io/raster/v1.1.0/schema.json",
                                "https://stac-extensions.github.io/eo/v1.1.0/schema.json"],
            "properties": {"datetime": iso(day), "platform": platform, "instruments": ["oli", "tirs"],
                           "eo:cloud_cover": cloud, "landsat:wrs_path": "017", "landsat:wrs_row": f"{row:03d}",
                           "landsat:collection_category": "T1", "landsat:collection_number": "02",
                           "proj:epsg": crs.to_epsg()},
            "assets": {"lwir11": lwir, "qa_pixel": qa}, "links": []}


def modis_item(server: StacServer, product: str, day: dt.date, h: int, asset: str, grid) -> dict:
    crs, transform, shape = grid
    bbox, geometry = _footprint(crs, transform, shape)
    ident = f"{product}.A{day:%Y%j}.h{h:02d}v05.061.2021228105320"
    assets = {"LST_Day_1km": _asset(server.asset_url(f"{asset}_LST_Day_1km.tif"), "LST_Day_1km", "uint16",
                                    0.02, None, 0, "Kelvin"),
              "QC_Day": _asset(server.asset_url(f"{asset}_QC_Day.tif"), "QC_Day", "uint8")}
    return {"type": "Feature", "stac_version": "1.0.0", "id": ident, "bbox": bbox, "geometry": geometry,
            "stac_extensions": ["https://stac-extensions.github.io/raster/v1.1.0/schema.json"],
            "properties": {"datetime": None, "start_datetime": f"{day}T00:00:00Z", "end_datetime": f"{day}T23:59:59Z",
                           "platform": "terra" if product.startswith("MOD") else "aqua", "instruments": ["modis"],
                           "modis:horizontal-tile": h, "modis:vertical-tile": 5},
            "assets": assets, "links": []}


def publish(server: StacServer, grids: dict) -> None:
    """Describe every asset as the archive's items."""
    ls = grids["landsat"]
    crs, transform, shape = ls
    half = lambda start, end: (crs, transform * Affine.translation(0, start), (end - start, shape[1]))  # noqa: E731
    add = server.add_item
    add(LANDSAT_COLLECTION, landsat_item(server, "LC08_L2SP_017036_20130419_02_T2", LANDSAT_DATES["real"], "real",
                                         ls, 36, 40.0))
    add(LANDSAT_COLLECTION, landsat_item(server, "LC08_L2SP_017036_20130505_02_T1", LANDSAT_DATES["clear"], "clear",
                                         ls, 36, 5.0))
    add(LANDSAT_COLLECTION, landsat_item(server, "LC08_L2SP_017036_20130521_02_T1", LANDSAT_DATES["mosaic"],
                                         "row036", half(0, 300), 36, 3.0))
    add(LANDSAT_COLLECTION, landsat_item(server, "LC08_L2SP_017037_20130521_02_T1", LANDSAT_DATES["mosaic"],
                                         "row037", half(250, 512), 37, 3.0))
    add(LANDSAT_COLLECTION, landsat_item(server, "LC08_L2SP_017036_20130606_02_T1", LANDSAT_DATES["cloudy"],
                                         "cloudy", ls, 36, 55.0))
    add(LANDSAT_COLLECTION, landsat_item(server, "LC08_L2SP_017036_20130622_02_T1", dt.date(2013, 6, 22),
                                         "clear", ls, 36, 95.0))  # over the search's cloud limit
    add(MODIS_COLLECTION, modis_item(server, "MOD11A1", MODIS_REAL_DATE, 11, "MOD_real", grids["modis_real"]))
    for day in MODIS_DATES:
        for h in (11, 12):
            add(MODIS_COLLECTION, modis_item(server, "MOD11A1", day, h, f"MOD_h{h}_{day:%Y%m%d}", grids[f"h{h}"]))
    add(MODIS_COLLECTION, modis_item(server, "MYD11A1", MODIS_DATES[0], 11, f"MOD_h11_{MODIS_DATES[0]:%Y%m%d}",
                                     grids["h11"]))


def area_wgs84() -> tuple[float, float, float, float]:
    return tuple(transform_bounds("EPSG:32617", "EPSG:4326", *AREA_UTM, densify_pts=21))

"""A seeded, realistic MODIS + Landsat LST time series written in the real product formats.

The generator simulates a fine (30 m) "true" LST field over a landscape of one of
``CLIMATES`` — an Orléans-like humid temperate one (the Loire, a city, a forest, crop
parcels with a growing season, bare soil) or a Riverina-like semi-arid irrigated one (dry
pasture and bare soil, irrigated summer crops that stay cool, a small town, channels) —
with the seasons of the hemisphere of its centre, then observes it the way the sensors do:

* Landsat 8 Collection 2 Level-2: ``ST_B10`` (uint16, DN·0.00341802 + 149 K) with a
  ``QA_PIXEL`` band whose bits flag fill, cloud, dilated cloud and cloud shadow, and
  an ``MTL.json`` holding the scale and offset. Cloud tops are written as cold DNs,
  so a reader that ignores QA shows them.
* MODIS MOD11A1 as AppEEARS GeoTIFF exports on the sinusoidal grid (926.6 m):
  ``LST_Day_1km`` (uint16, DN·0.02 K, 0 fill) and ``QC_Day`` (bits 0-1 '10' where
  cloud kept the pixel from being produced), after a Gaussian point-spread, a
  per-date bias and sensor noise.

The cloud-free fine truth and the land cover go to ``truth/`` so later stages
(gap-filling, fusion) can be scored where the answer is known. Everything is
synthetic and labelled so in the files' metadata.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject, transform_bounds
from rasterio.warp import transform as warp_transform

from .. import __version__
from ..errors import InputError
from ..io.grid import MODIS_PIXEL_M
from ..io.lst_raster import KELVIN_OFFSET, LSTRaster
from ..io.outputs import check_output_size, output_folder
from ..io.readers import LANDSAT_ST_ADD, LANDSAT_ST_MULT, MODIS_SCALE
from ..io.writers import raster_output, write_lst
from ..parameters import param
from ..progress import Progress, ensure

MODIS_SINUSOIDAL = CRS.from_proj4("+proj=sinu +lon_0=0 +x_0=0 +y_0=0 +R=6371007.181 +units=m +no_defs")
MODIS_ORIGIN = (-20015109.355798, 10007554.677899)
MODIS_TILE_PX = 1200

CLASSES = {0: "water", 1: "urban", 2: "forest", 3: "winter crop", 4: "summer crop", 5: "bare soil"}
WATER, URBAN, FOREST, WINTER_CROP, SUMMER_CROP, BARE = range(6)

# Real QA_PIXEL words of Collection 2 (confidence bits included): clear land, clear
# water, cloud (high confidence), dilated cloud, cloud shadow.
QA_CLEAR, QA_WATER, QA_CLOUD, QA_DILATED, QA_SHADOW = 21824, 21952, 22280, 21762, 23824
PAD_M = 3000.0  # simulated margin around the Landsat extent, so MODIS pixels are whole


@dataclass(frozen=True)
class Climate:
    """How a landscape's surfaces heat over the year (K, days of year in the northern calendar; a centre in
    the southern hemisphere shifts every date by half a year)."""

    label: str
    air_mean: float = 11.5
    air_amplitude: float = 8.5
    weather_sd: float = 2.5  # day-to-day air temperature anomaly
    moisture: float = 0.5  # soil moisture on an average day (0 dry - 1 wet); hot days are drier
    bare_gain: float = 12.0  # bare soil's excess over the air at full sun, when dry
    urban: tuple[float, float] = (4.0, 9.0)  # excess: base, per unit of sun
    forest: tuple[float, float] = (0.5, 3.0)
    green: tuple[float, float] = (0.5, 2.0)  # a green canopy's excess (negative: evaporative cooling)
    crops: tuple[tuple[int, float, float], ...] = ((3, 135, 40), (4, 215, 35))  # class, peak day, spread (days)
    water: tuple[float, float, float] = (12.5, 9.0, 130)  # mean, amplitude, day of the seasonal peak - 100
    # land cover: shares of winter crop, summer crop, bare soil and forest among parcels; city radius
    parcel_shares: tuple[float, float, float, float] = (0.42, 0.33, 0.15, 0.10)
    city_radius: float = 0.2  # share of the scene's side
    forest_level: float = 1.0  # threshold of the forest noise (higher: less forest)
    river_m: float = 150.0  # half-width of the river or channel


CLIMATES = {
    "temperate": Climate("Humid temperate (Orléans-like: the Loire, city, forest, crops)"),
    "semi_arid": Climate(
        "Semi-arid irrigated (Riverina-like: dry pasture, irrigated summer crops, town, channels)",
        air_mean=17.0, air_amplitude=8.0, weather_sd=3.0, moisture=0.2, bare_gain=17.0, urban=(3.0, 8.0),
        forest=(1.0, 4.0), green=(-2.0, 0.5), crops=((3, 120, 35), (4, 210, 45)), water=(16.0, 7.0, 120),
        parcel_shares=(0.25, 0.30, 0.40, 0.05), city_radius=0.08, forest_level=1.8, river_m=45.0),
}


@dataclass
class SampleSpec:
    """What to generate. Defaults match the survey's STF-LST dataset (51 pairs, 950×950 px)."""

    width: int = param(950, "WIDTH", "Width (Landsat pixels)", 16, 5000)
    height: int = param(950, "HEIGHT", "Height (Landsat pixels)", 16, 5000)
    pixel_size: float = param(30.0, "PIXEL_SIZE", "Landsat pixel size (m)", 1.0, 1000.0, advanced=True)
    crs: str = param("EPSG:32631", "CRS", "Landsat grid CRS (UTM; default EPSG:32631)", kind="crs", advanced=True)
    center_lon: float = param(1.909, "CENTER_LON", "Centre longitude (°)", -180.0, 180.0, advanced=True)
    center_lat: float = param(47.902, "CENTER_LAT", "Centre latitude (°)", -85.0, 85.0, advanced=True)
    n_dates: int = param(51, "N_DATES", "Number of dated MODIS/Landsat pairs", 1, 300)
    start: dt.date = param(dt.date(2013, 3, 18), "START_DATE", "First date (YYYY-MM-DD)")
    end: dt.date = param(dt.date(2024, 10, 15), "END_DATE", "Last date (YYYY-MM-DD)")
    seed: int = param(0, "SEED", "Random seed", 0)
    cloudiness: float = param(0.25, "CLOUDINESS", "Mean cloudiness (0-1)", 0.0, 1.0)
    # dates given a heat wave/cold spell, field switches or a sensor disagreement
    difficult_fraction: float = param(0.2, "DIFFICULT_FRACTION", "Fraction of difficult dates (heat wave, cold "
                                      "spell, field switch, sensor disagreement)", 0.0, 1.0)
    climate: str = param("temperate", "CLIMATE", "Climate of the landscape", options=tuple(CLIMATES),
                         option_labels=tuple(c.label for c in CLIMATES.values()))
    wrs_path_row: str = "199027"
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        if self.climate not in CLIMATES:
            raise InputError(f"CLIMATE must be one of {', '.join(CLIMATES)}, got {self.climate!r}.")
        if self.width < 16 or self.height < 16:
            raise InputError(f"Sample size must be at least 16 × 16 pixels, got {self.width} × {self.height}.")
        if self.pixel_size <= 0:
            raise InputError(f"Pixel size must be greater than 0 m, got {self.pixel_size:g}.")
        if self.n_dates < 1:
            raise InputError(f"The number of dates must be at least 1, got {self.n_dates}.")
        if self.end < self.start:
            raise InputError(f"End date {self.end} is before start date {self.start}.")
        if not 0.0 <= self.cloudiness <= 1.0:
            raise InputError(f"Cloudiness must lie between 0 and 1, got {self.cloudiness:g}.")
        if not 0.0 <= self.difficult_fraction <= 1.0:
            raise InputError(f"The fraction of difficult dates must lie between 0 and 1, got "
                             f"{self.difficult_fraction:g}.")
        if self.width * self.height > 25_000_000:
            raise InputError(f"Sample size is limited to 25 million pixels (e.g. 5000 × 5000); {self.width} × "
                             f"{self.height} asked.")


# ------------------------------------------------------------- fields

def _gaussian(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur by FFT (periodic edges; callers blur padded areas only)."""
    if sigma <= 0:
        return a.astype(np.float64)
    h, w = a.shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    kernel = np.exp(-2.0 * (np.pi * sigma) ** 2 * (fx**2 + fy**2))
    return np.fft.irfft2(np.fft.rfft2(a) * kernel, s=a.shape)


def _noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Smooth random field with zero mean and unit standard deviation."""
    f = _gaussian(rng.standard_normal(shape), sigma)
    return (f - f.mean()) / (f.std() + 1e-12)


def _parcels(rng: np.random.Generator, shape: tuple[int, int], px: float) -> np.ndarray:
    """Integer ids of rectangular field parcels 250-750 m across."""
    h, w = shape

    def cuts(n: int) -> np.ndarray:
        edges, pos = [0], 0
        while pos < n:
            pos += int(rng.integers(max(2, 250 / px), max(3, 750 / px)))
            edges.append(min(pos, n))
        return np.repeat(np.arange(len(edges) - 1), np.diff(edges))

    rows, cols = cuts(h), cuts(w)
    return rows[:, None] * (cols.max() + 1) + cols[None, :]


def land_cover(rng: np.random.Generator, shape: tuple[int, int], px: float,
               climate: Climate = CLIMATES["temperate"]) -> tuple[np.ndarray, np.ndarray]:
    """Classes (see ``CLASSES``) and parcel ids of a landscape of ``climate``."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    parcel = _parcels(rng, shape, px)
    n_parcels = int(parcel.max()) + 1
    crop_type = rng.choice([WINTER_CROP, SUMMER_CROP, BARE, FOREST], size=n_parcels, p=list(climate.parcel_shares))
    lc = crop_type[parcel]
    # Forest: a large massif to the north-east, like the Forêt d'Orléans.
    forest = _noise(rng, shape, 1500 / px) + 2.2 * ((x / w - 0.75) ** 2 + (y / h - 0.2) ** 2 < 0.06)
    lc[forest > climate.forest_level] = FOREST
    # City: a blob around the centre with a ragged edge, plus villages.
    r = np.hypot(x - 0.48 * w, y - 0.5 * h) / min(h, w)
    urban = r < climate.city_radius * (1 + 0.35 * _noise(rng, shape, 400 / px))
    for _ in range(max(1, (h * w) // 150_000)):
        cy, cx, rad = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(150, 450) / px
        urban |= np.hypot(x - cx, y - cy) < rad
    lc[urban] = URBAN
    # River: a meandering band ~300 m wide crossing west to east, south of the centre.
    centre = 0.58 * h + 0.05 * h * np.sin(2 * np.pi * x / (0.9 * w) + rng.uniform(0, 6.28))
    lc[np.abs(y - centre) < max(1.0, climate.river_m / px)] = WATER
    return lc.astype(np.uint8), parcel


def _greenness(doy: float, peak: float, width: float) -> float:
    """Crop canopy cover (0..1) with a smooth season peaking on day ``peak``."""
    d = (doy - peak + 182.5) % 365.25 - 182.5
    return float(np.exp(-0.5 * (d / width) ** 2))


def true_lst(
    date: dt.date,
    lc: np.ndarray,
    parcel_offset: np.ndarray,
    texture: np.ndarray,
    rng: np.random.Generator,
    px: float,
    climate: Climate = CLIMATES["temperate"],
    south: bool = False,
) -> np.ndarray:
    """Fine 'true' LST (K) at Landsat's ~10:30 overpass on ``date``.

    Air temperature follows the seasonal cycle plus a weather anomaly; each class
    adds its own surface excess driven by insolation (city and bare soil heat most,
    forest least, water lags the season); crops cool while their canopy is green.
    ``south``: the seasons of the southern hemisphere (every date half a year on).
    """
    doy = date.timetuple().tm_yday - (182.625 if south else 0.0)
    season = np.sin(2 * np.pi * (doy - 105) / 365.25)
    sun = 0.55 + 0.45 * np.sin(2 * np.pi * (doy - 80) / 365.25)
    weather = rng.normal(0.0, climate.weather_sd)
    air = climate.air_mean + climate.air_amplitude * season + weather
    moisture = np.clip(climate.moisture - weather / 6 + rng.normal(0, 0.15), 0.0, 1.0)
    bare = 3.0 + climate.bare_gain * sun * (1.1 - 0.5 * moisture)
    excess = np.zeros(lc.shape, np.float64)  # water is set apart below
    excess[lc == URBAN] = climate.urban[0] + climate.urban[1] * sun
    excess[lc == FOREST] = climate.forest[0] + climate.forest[1] * sun
    excess[lc == BARE] = bare
    for cls, peak, width in climate.crops:
        g = _greenness(doy, peak, width)
        excess[lc == cls] = g * (climate.green[0] + climate.green[1] * sun) + (1 - g) * bare
    t = air + excess
    mean, amplitude, lag = climate.water
    water = mean + amplitude * np.sin(2 * np.pi * (doy - lag) / 365.25) + 0.3 * weather
    t[lc == WATER] = water
    regional = 0.8 * _noise(rng, lc.shape, 8000 / px)
    t += parcel_offset * sun + texture * (0.5 + sun) + regional
    return (t + KELVIN_OFFSET).astype(np.float32)


@dataclass
class Event:
    """What makes a date difficult, and how much: the survey's failure cases, made on purpose."""

    kind: str  # "heat wave", "cold spell", "field switch" or "sensor disagreement"
    shift_k: float = 0.0  # the whole scene's change (heat wave / cold spell)
    switched: float = 0.0  # the fraction of crop parcels that switched (irrigated or harvested)
    modis_bias_k: float | None = None  # MODIS − Landsat disagreement of the day

    def describe(self) -> str:
        if self.kind in ("heat wave", "cold spell"):
            return f"{self.kind}: the whole scene {self.shift_k:+.1f} K (city and bare soil more)"
        if self.kind == "field switch":
            return f"field switch: {self.switched:.0%} of the crop parcels irrigated or harvested"
        return f"sensor disagreement: MODIS {self.modis_bias_k:+.1f} K from Landsat"


KINDS = ("heat wave", "cold spell", "field switch", "sensor disagreement")


def plan_events(spec: SampleSpec, dates: list[dt.date]) -> dict[dt.date, Event]:
    """Difficult dates and their events, from their own random stream (the rest of the data is unchanged).

    The first and last dates stay ordinary, so every difficult date has references on both sides.
    """
    rng = np.random.default_rng([spec.seed, 2024])
    inner = dates[1:-1]
    count = int(round(spec.difficult_fraction * len(inner)))
    if not count:
        return {}
    chosen = sorted(rng.choice(len(inner), size=count, replace=False).tolist())
    events = {}
    for k, index in enumerate(chosen):
        kind = KINDS[(k + int(rng.integers(len(KINDS)))) % len(KINDS)]
        if kind == "heat wave":
            event = Event(kind, shift_k=float(rng.uniform(6.0, 10.0)))
        elif kind == "cold spell":
            event = Event(kind, shift_k=-float(rng.uniform(5.0, 8.0)))
        elif kind == "field switch":
            event = Event(kind, switched=float(rng.uniform(0.25, 0.45)))
        else:
            event = Event(kind, modis_bias_k=float(rng.choice([-1, 1]) * rng.uniform(3.5, 5.0)))
        events[inner[index]] = event
    return events


def apply_event(truth: np.ndarray, event: Event | None, lc: np.ndarray, parcel: np.ndarray,
                date: dt.date, seed: int) -> np.ndarray:
    """The truth of an event's date: a scene-wide change, or parcels that switched state."""
    if event is None or event.kind == "sensor disagreement":
        return truth
    out = truth.astype(np.float64)
    if event.kind in ("heat wave", "cold spell"):
        # Impervious and dry surfaces heat (and cool) more than the air; water barely follows.
        gain = np.select([lc == URBAN, lc == BARE, lc == WATER, lc == FOREST], [1.3, 1.2, 0.3, 0.8], 1.0)
        out += event.shift_k * gain
    else:
        rng = np.random.default_rng([seed, date.toordinal()])
        crops = np.isin(lc, (WINTER_CROP, SUMMER_CROP, BARE))
        ids = np.unique(parcel[crops])
        switched = rng.choice(ids, size=max(1, int(event.switched * ids.size)), replace=False)
        lookup = np.zeros(int(parcel.max()) + 1)
        lookup[switched] = rng.choice([-8.0, 6.0], size=switched.size)  # irrigated: −8 K; harvested: +6 K
        out += np.where(crops, lookup[parcel], 0.0)
    return out.astype(np.float32)


def _clouds(rng: np.random.Generator, shape: tuple[int, int], fraction: float, px: float):
    """Cloud, dilated-cloud ring and shadow masks covering about ``fraction`` of the area."""
    empty = np.zeros(shape, bool)
    if fraction <= 0.005:
        return empty, empty, empty
    field_ = _noise(rng, shape, 1200 / px) + 0.25 * _noise(rng, shape, 150 / px)
    cloud = field_ > np.quantile(field_, 1.0 - fraction)
    dilated = (_gaussian(cloud.astype(float), 90 / px) > 0.05) & ~cloud
    dy, dx = int(round(600 / px)), int(round(450 / px))
    shadow = np.zeros(shape, bool)
    shadow[dy:, dx:] = cloud[:-dy or None, :-dx or None]
    shadow &= ~cloud & ~dilated
    return cloud, dilated, shadow


# --------------------------------------------------------------- grids

@dataclass
class _Grids:
    crs: CRS
    inner: Affine
    inner_shape: tuple[int, int]
    outer: Affine
    outer_shape: tuple[int, int]
    pad: int
    modis: Affine
    modis_shape: tuple[int, int]
    tile: str


def _grids(spec: SampleSpec) -> _Grids:
    crs = CRS.from_user_input(spec.crs)
    xs, ys = warp_transform("EPSG:4326", crs, [spec.center_lon], [spec.center_lat])
    px = spec.pixel_size
    left = np.floor((xs[0] - spec.width * px / 2) / px) * px
    top = np.ceil((ys[0] + spec.height * px / 2) / px) * px
    inner = Affine(px, 0, left, 0, -px, top)
    pad = int(np.ceil(PAD_M / px))
    outer = Affine(px, 0, left - pad * px, 0, -px, top + pad * px)
    outer_shape = (spec.height + 2 * pad, spec.width + 2 * pad)
    bounds = (left, top - spec.height * px, left + spec.width * px, top)
    sl, sb, sr, st = transform_bounds(crs, MODIS_SINUSOIDAL, *bounds, densify_pts=51)
    x0, y0 = MODIS_ORIGIN
    c0, c1 = int(np.floor((sl - x0) / MODIS_PIXEL_M)), int(np.ceil((sr - x0) / MODIS_PIXEL_M))
    r0, r1 = int(np.floor((y0 - st) / MODIS_PIXEL_M)), int(np.ceil((y0 - sb) / MODIS_PIXEL_M))
    modis = Affine(MODIS_PIXEL_M, 0, x0 + c0 * MODIS_PIXEL_M, 0, -MODIS_PIXEL_M, y0 - r0 * MODIS_PIXEL_M)
    tile = f"h{c0 // MODIS_TILE_PX:02d}v{r0 // MODIS_TILE_PX:02d}"
    return _Grids(crs, inner, (spec.height, spec.width), outer, outer_shape, pad, modis, (r1 - r0, c1 - c0), tile)


def sample_dates(spec: SampleSpec, rng: np.random.Generator) -> list[dt.date]:
    """Dates on Landsat's 16-day cycle from ``start``, spread over the period, first and last kept."""
    n_cycle = (spec.end - spec.start).days // 16 + 1
    cycle = [spec.start + dt.timedelta(days=16 * k) for k in range(n_cycle)]
    if spec.n_dates >= n_cycle:
        return cycle
    if spec.n_dates == 1:
        return [cycle[0]]
    middle = rng.choice(np.arange(1, n_cycle - 1), size=spec.n_dates - 2, replace=False)
    return [cycle[i] for i in sorted({0, n_cycle - 1, *middle.tolist()})]


# ------------------------------------------------------------- writers

def _write_uint(path: Path, array: np.ndarray, crs: CRS, transform: Affine, nodata, tags: dict) -> None:
    profile = {
        "driver": "GTiff", "dtype": str(array.dtype), "count": 1, "width": array.shape[1],
        "height": array.shape[0], "crs": crs, "transform": transform, "nodata": nodata,
        "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate",
    }
    with raster_output(path, **profile) as dst:
        dst.write(array, 1)
        dst.update_tags(**tags)


def _landsat_names(spec: SampleSpec, date: dt.date) -> dict[str, str]:
    processed = date + dt.timedelta(days=14)
    pid = f"LC08_L2SP_{spec.wrs_path_row}_{date:%Y%m%d}_{processed:%Y%m%d}_02_T1"
    return {"id": pid, "st": f"{pid}_ST_B10.TIF", "qa": f"{pid}_QA_PIXEL.TIF", "mtl": f"{pid}_MTL.json"}


def _modis_names(date: dt.date) -> dict[str, str]:
    doy = f"{date.year}{date.timetuple().tm_yday:03d}"
    return {"lst": f"MOD11A1.061_LST_Day_1km_doy{doy}_aid0001.tif", "qc": f"MOD11A1.061_QC_Day_doy{doy}_aid0001.tif"}


def _mtl(spec: SampleSpec, names: dict, date: dt.date, cloud_cover: float, crs: CRS) -> dict:
    epsg = crs.to_epsg() or 0
    return {"LANDSAT_METADATA_FILE": {
        "PRODUCT_CONTENTS": {
            "ORIGIN": "Synthetic sample generated by LST Fusion (not USGS data)",
            "LANDSAT_PRODUCT_ID": names["id"], "PROCESSING_LEVEL": "L2SP",
            "COLLECTION_NUMBER": "02", "COLLECTION_CATEGORY": "T1",
            "FILE_NAME_BAND_ST_B10": names["st"], "FILE_NAME_QUALITY_L1_PIXEL": names["qa"],
        },
        "IMAGE_ATTRIBUTES": {
            "SPACECRAFT_ID": "LANDSAT_8", "SENSOR_ID": "OLI_TIRS",
            "WRS_PATH": spec.wrs_path_row[:3], "WRS_ROW": spec.wrs_path_row[3:],
            "DATE_ACQUIRED": date.isoformat(), "SCENE_CENTER_TIME": "10:32:00.0000000Z",
            "CLOUD_COVER": f"{100 * cloud_cover:.2f}",
        },
        "PROJECTION_ATTRIBUTES": {"MAP_PROJECTION": "UTM", "DATUM": "WGS84", "UTM_ZONE": str(epsg % 100)},
        "LEVEL2_SURFACE_TEMPERATURE_PARAMETERS": {
            "TEMPERATURE_MULT_BAND_ST_B10": f"{LANDSAT_ST_MULT}",
            "TEMPERATURE_ADD_BAND_ST_B10": f"{LANDSAT_ST_ADD}",
        },
    }}


def _to_dn(kelvin: np.ndarray, scale: float, offset: float) -> np.ndarray:
    return np.clip(np.round((kelvin - offset) / scale), 1, 65535).astype(np.uint16)


# ------------------------------------------------------------------ main

@dataclass(frozen=True)
class SampleDataset:
    """What Generate sample dataset wrote: its manifest, dates, cloud-free truth and land cover."""

    manifest: Path
    dates: tuple[dt.date, ...]
    difficult_dates: tuple[dt.date, ...]

    @property
    def folder(self) -> Path:
        return self.manifest.parent

    @property
    def truth(self) -> Path:
        return self.folder / "truth"

    @property
    def landcover(self) -> Path:
        return self.truth / "landcover.tif"


def _write_landsat(tmp: Path, spec: SampleSpec, g, rng, truth: np.ndarray, lc: np.ndarray, inner, date: dt.date):
    """The Landsat scene of one date (ST_B10, QA_PIXEL, MTL): small sensor noise, cold cloud tops, cooler
    shadows, QA words. Returns its file names, its cloud cover and the cloud mask (for MODIS)."""
    px = spec.pixel_size
    fraction = float(np.clip(rng.beta(0.5, 1.1) * 2 * spec.cloudiness, 0, 0.95))
    cloud, dilated, shadow = _clouds(rng, g.outer_shape, fraction, px)
    obs = truth + rng.normal(0, 0.3, truth.shape).astype(np.float32)
    obs = np.where(shadow, obs - 3.0, obs)
    cloud_top = 250.0 + 8.0 * _noise(rng, truth.shape, 300 / px)
    obs = np.where(cloud, cloud_top, obs)
    qa = np.where(lc == WATER, QA_WATER, QA_CLEAR).astype(np.uint16)
    qa[dilated] = QA_DILATED
    qa[shadow] = QA_SHADOW
    qa[cloud] = QA_CLOUD
    names = _landsat_names(spec, date)
    st_tags = {"SYNTHETIC": "LST Fusion sample data", "DATE_ACQUIRED": date.isoformat()}
    _write_uint(tmp / "landsat" / names["st"], _to_dn(obs[inner], LANDSAT_ST_MULT, LANDSAT_ST_ADD),
                g.crs, g.inner, 0, st_tags)
    _write_uint(tmp / "landsat" / names["qa"], qa[inner], g.crs, g.inner, None, st_tags)
    cloud_cover = float(cloud[inner].mean())
    (tmp / "landsat" / names["mtl"]).write_text(json.dumps(_mtl(spec, names, date, cloud_cover, g.crs), indent=2))
    return names, cloud_cover, cloud


def _write_modis(tmp: Path, g, rng, truth: np.ndarray, cloud: np.ndarray, psf_sigma: float, event,
                 date: dt.date) -> tuple[dict, float, float]:
    """The MOD11A1 export of one date: point-spread, area average onto the sinusoidal grid, bias and noise,
    QC. Returns its file names, the fraction not produced and the bias."""
    blurred = _gaussian(truth.astype(np.float64), psf_sigma).astype(np.float32)
    coarse = np.zeros(g.modis_shape, np.float32)
    reproject(blurred, coarse, src_transform=g.outer, src_crs=g.crs,
              dst_transform=g.modis, dst_crs=MODIS_SINUSOIDAL, resampling=Resampling.average)
    cover = np.zeros(g.modis_shape, np.float32)
    reproject(cloud.astype(np.float32), cover, src_transform=g.outer, src_crs=g.crs,
              dst_transform=g.modis, dst_crs=MODIS_SINUSOIDAL, resampling=Resampling.average)
    bias = rng.normal(-1.0, 0.7)
    if event is not None and event.modis_bias_k is not None:
        bias = event.modis_bias_k
    coarse = coarse + bias + rng.normal(0, 0.4, coarse.shape) - 2.0 * cover
    qc = np.zeros(g.modis_shape, np.uint8)
    qc[cover > 0.0] = 0b01000001  # other quality, LST error <= 2 K
    not_produced = cover > 0.25
    qc[not_produced] = 0b10
    lst_dn = np.where(not_produced, 0, _to_dn(coarse, MODIS_SCALE, 0.0)).astype(np.uint16)
    names = _modis_names(date)
    tags = {"SYNTHETIC": "LST Fusion sample data", "SHORTNAME": "MOD11A1", "RANGEBEGINNINGDATE": date.isoformat(),
            "TILE": g.tile, "scale_factor": str(MODIS_SCALE), "add_offset": "0", "_FillValue": "0"}
    _write_uint(tmp / "modis" / names["lst"], lst_dn, MODIS_SINUSOIDAL, g.modis, 0, tags)
    _write_uint(tmp / "modis" / names["qc"], qc, MODIS_SINUSOIDAL, g.modis, None, tags)
    return names, float(not_produced.mean()), float(bias)


def _manifest(spec: SampleSpec, g, events: dict, records: list[dict]) -> dict:
    spec_json = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in asdict(spec).items()}
    return {
        "kind": "lst_fusion_sample_dataset",
        "generator_version": __version__,
        "synthetic": True,
        "spec": spec_json,
        "landsat_grid": {"crs": g.crs.to_string(), "transform": list(g.inner)[:6],
                         "width": spec.width, "height": spec.height},
        "modis_grid": {"crs": MODIS_SINUSOIDAL.to_proj4(), "transform": list(g.modis)[:6],
                       "width": g.modis_shape[1], "height": g.modis_shape[0], "tile": g.tile},
        "classes": CLASSES,
        "landcover": "truth/landcover.tif",
        "difficult_dates": {d.isoformat(): e.describe() for d, e in sorted(events.items())},
        "dates": records,
    }


def generate_sample_dataset(
    out_dir: str | os.PathLike,
    spec: SampleSpec | None = None,
    progress: Progress | None = None,
) -> SampleDataset:
    """Write a sample MODIS + Landsat LST series to ``out_dir``.

    The folder appears complete or not at all. An existing folder is replaced only
    when empty or holding an earlier sample dataset (it has our manifest).
    """
    spec = spec or SampleSpec()
    spec.validate()
    progress = ensure(progress)
    rng = np.random.default_rng(spec.seed)
    g = _grids(spec)
    px = spec.pixel_size
    dates = sample_dates(spec, rng)
    events = plan_events(spec, dates)
    climate = CLIMATES[spec.climate]
    lc, parcel = land_cover(rng, g.outer_shape, px, climate)
    parcel_offset = rng.normal(0, 1.0, int(parcel.max()) + 1)[parcel]
    texture = 0.6 * _noise(rng, g.outer_shape, 0.7) + 0.6 * _noise(rng, g.outer_shape, 60 / px)
    texture[lc == URBAN] *= 2.5
    texture[lc == WATER] *= 0.2
    inner = (slice(g.pad, g.pad + spec.height), slice(g.pad, g.pad + spec.width))
    psf_sigma = 0.5 * MODIS_PIXEL_M / px  # MODIS's point-spread reaches beyond its pixel
    records = []
    with output_folder(out_dir, "generate_sample_dataset") as tmp:
        # Per date: ST_B10 and QA (uint16), truth (float32, COG with overviews).
        check_output_size(tmp, spec.width, spec.height, 12, len(dates), "OUTPUT_FOLDER", progress)
        for sub in ("landsat", "modis", "truth"):
            (tmp / sub).mkdir()
        _write_uint(tmp / "truth" / "landcover.tif", lc[inner], g.crs, g.inner, 255,
                    {f"CLASS_{k}": v for k, v in CLASSES.items()})
        for i, date in enumerate(dates):
            progress.update(i / len(dates), f"Simulating {date.isoformat()}")
            truth = apply_event(true_lst(date, lc, parcel_offset, texture, rng, px, climate, spec.center_lat < 0),
                                events.get(date), lc, parcel, date, spec.seed)
            names, cloud_cover, cloud = _write_landsat(tmp, spec, g, rng, truth, lc, inner, date)
            mnames, not_produced, bias = _write_modis(tmp, g, rng, truth, cloud, psf_sigma, events.get(date), date)
            truth_name = f"LST_truth_{date:%Y%m%d}.tif"
            write_lst(LSTRaster(truth[inner], g.crs, g.inner, date, "synthetic truth", "truth"),
                      tmp / "truth" / truth_name, cog=False, algorithm="generate_sample_dataset")
            records.append({
                "date": date.isoformat(),
                "landsat_st_b10": f"landsat/{names['st']}",
                "landsat_qa_pixel": f"landsat/{names['qa']}",
                "landsat_mtl": f"landsat/{names['mtl']}",
                "modis_lst": f"modis/{mnames['lst']}",
                "modis_qc": f"modis/{mnames['qc']}",
                "truth": f"truth/{truth_name}",
                "landsat_cloud_fraction": round(cloud_cover, 4),
                "modis_not_produced_fraction": round(not_produced, 4),
                "modis_bias_k": round(bias, 3),
                "difficult": events[date].describe() if date in events else None,
            })
        (tmp / "manifest.json").write_text(json.dumps(_manifest(spec, g, events, records), indent=2))
    progress.update(1.0, f"Wrote {len(dates)} dated MODIS/Landsat pairs to {out_dir}")
    return SampleDataset(Path(out_dir) / "manifest.json", tuple(dates), tuple(sorted(events)))

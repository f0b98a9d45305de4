"""Finding MODIS and Landsat LST scenes in a STAC API (pystac-client), described from the items' own metadata.

A :class:`StacSource` says where to search and how to sign asset links; :data:`SOURCES` holds the
known ones (``register`` adds more). The search returns :class:`Scene` objects: one item's LST and
quality assets, its date and the scale and offset its ``raster:bands`` state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..errors import InputError, LSTFusionError
from ..io.readers import LANDSAT_ST_ADD, LANDSAT_ST_MULT, MODIS_SCALE

Signer = Callable[[str], str]


class NetworkError(LSTFusionError):
    """The archive could not be reached or refused a request; the message names what and says what to do."""


def _planetary_computer_sign(href: str) -> str:
    import planetary_computer  # imported on first use: it loads pydantic

    return planetary_computer.sign(href)


def _planetary_computer_forget() -> None:
    """Drop the cached access tokens, so the next signature is a fresh one (after a 403)."""
    import planetary_computer.sas

    planetary_computer.sas.TOKEN_CACHE.clear()


@dataclass(frozen=True)
class StacSource:
    """A STAC API and the names its collections have there."""

    name: str
    url: str
    landsat_collection: str
    modis_collections: dict[str, str]  # product (MOD11A1, MYD11A1, MOD21A1) -> collection id
    sign: Signer = field(default=lambda href: href, compare=False)
    # Called before signing again after an asset answered 403 (expired signature).
    forget_signatures: Callable[[], None] = field(default=lambda: None, compare=False)
    help: str = ""


SOURCES: dict[str, StacSource] = {}


def register(source: StacSource) -> StacSource:
    """Make ``source`` available by its name (Download's SOURCE choice)."""
    SOURCES[source.name] = source
    return source


register(StacSource(
    "planetary_computer", "https://planetarycomputer.microsoft.com/api/stac/v1", "landsat-c2-l2",
    {"MOD11A1": "modis-11A1-061", "MYD11A1": "modis-11A1-061", "MOD21A1": "modis-21A1-061"},
    _planetary_computer_sign, _planetary_computer_forget,
    "Microsoft Planetary Computer (anonymous; asset links signed by the planetary-computer package)"))

SENSORS = ("landsat", "modis")
LANDSAT_PLATFORMS = {"landsat-8": "LC08", "landsat-9": "LC09"}
# Asset keys of the LST layer and of its quality layer, by product and layer, as the providers name them.
LANDSAT_KEYS = (("lwir11", "qa_pixel"), ("ST_B10", "QA_PIXEL"), ("st_b10", "qa_pixel"))
MODIS_QUALITY = {"LST_Day_1km": "QC_Day", "LST_Night_1km": "QC_Night", "LST_1KM": "QC"}


@dataclass(frozen=True)
class Scene:
    """One item's LST asset and quality asset, ready to read."""

    sensor: str  # 'landsat' | 'modis'
    product: str  # LC08, LC09, MOD11A1, MYD11A1, MOD21A1
    item_id: str
    date: dt.date
    data_href: str
    quality_href: str
    scale: float
    offset: float
    nodata: float | None
    tile: str  # Landsat path+row (017036), MODIS tile (h11v05)
    cloud_cover: float | None = None
    category: str = "T1"  # Landsat collection category


def _band(asset: dict) -> dict:
    bands = asset.get("raster:bands") or [{}]
    return bands[0] if isinstance(bands, list) and bands else {}


def _item_date(item: dict) -> dt.date:
    props = item.get("properties", {})
    stamp = props.get("datetime") or props.get("start_datetime")
    if not stamp:
        raise InputError(f"STAC item {item.get('id')}: has no datetime; the archive's item is incomplete.")
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).date()


def _landsat_scene(item: dict) -> Scene | None:
    assets, props = item.get("assets", {}), item.get("properties", {})
    keys = next(((d, q) for d, q in LANDSAT_KEYS if d in assets and q in assets), None)
    if keys is None:
        by_name = {b.get("common_name"): k for k, a in assets.items() for b in a.get("eo:bands", [])}
        if "lwir11" in by_name and "qa_pixel" in assets:
            keys = (by_name["lwir11"], "qa_pixel")
    product = LANDSAT_PLATFORMS.get(str(props.get("platform", "")).lower())
    if keys is None or product is None:
        return None  # Landsat 4-7 or an item without surface temperature
    band = _band(assets[keys[0]])
    path, row = props.get("landsat:wrs_path"), props.get("landsat:wrs_row")
    tile = f"{int(path):03d}{int(row):03d}" if path is not None and row is not None else "000000"
    return Scene("landsat", product, item["id"], _item_date(item), assets[keys[0]]["href"], assets[keys[1]]["href"],
                 float(band.get("scale", LANDSAT_ST_MULT)), float(band.get("offset", LANDSAT_ST_ADD)),
                 band.get("nodata", 0), tile, props.get("eo:cloud_cover"),
                 str(props.get("landsat:collection_category", "T1")))


def _modis_scene(item: dict, product: str, layer: str) -> Scene | None:
    assets, props = item.get("assets", {}), item.get("properties", {})
    item_product = item["id"].split(".")[0].upper()
    wanted = {product}
    if product == "MOD21A1":  # one LST_1KM layer; day and night may be items of their own (MOD21A1D/N)
        wanted.add("MOD21A1" + ("N" if "Night" in layer else "D"))
        layer = "LST_1KM"
    if item_product not in wanted:
        return None  # the collection holds Terra and Aqua (or day and night); this item is another one
    quality = MODIS_QUALITY[layer]
    if layer not in assets or quality not in assets:
        return None
    band = _band(assets[layer])
    h, v = props.get("modis:horizontal-tile"), props.get("modis:vertical-tile")
    tile = f"h{int(h):02d}v{int(v):02d}" if h is not None and v is not None else item["id"].split(".")[2]
    return Scene("modis", product, item["id"], _item_date(item), assets[layer]["href"], assets[quality]["href"],
                 float(band.get("scale", MODIS_SCALE)), float(band.get("offset", 0.0)), band.get("nodata", 0), tile)


def open_client(source: StacSource, timeout: float):
    """A pystac-client Client of ``source``, with errors that say what went wrong."""
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    try:
        return Client.open(source.url, timeout=timeout)
    except APIError as exc:
        if _unreachable(exc):
            raise NetworkError(f"STAC API {source.url}: cannot be reached ({_short(exc)}). Check the internet "
                               "connection (and a proxy in QGIS's network settings), or the SOURCE_URL.") from None
        raise NetworkError(f"STAC API {source.url}: {_api_problem(exc)}") from None
    except Exception as exc:  # requests' connection errors, timeouts, invalid JSON
        raise NetworkError(f"STAC API {source.url}: cannot be reached ({_short(exc)}). Check the internet "
                           "connection (and a proxy in QGIS's network settings), or the SOURCE_URL.") from None


def _unreachable(exc: Exception) -> bool:
    text = str(exc)
    return getattr(exc, "status_code", None) is None and any(
        word in text for word in ("Connection refused", "Failed to establish", "Name or service not known",
                                  "Temporary failure in name resolution", "Max retries exceeded", "timed out"))


def _short(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) < 300 else text[:300] + "…"


def _api_problem(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    if status == 429:
        return ("the provider's rate limit was reached (HTTP 429). Wait a few minutes and run again; "
                "a rerun into the same folder keeps what was already downloaded.")
    if status == 404:
        return "not found (HTTP 404): check the URL and the collection names."
    return f"the request failed ({'HTTP ' + str(status) + ': ' if status else ''}{_short(exc)})."


def _search(client, source: StacSource, collection: str, bbox, start: dt.date, end: dt.date,
            query: dict | None) -> list[dict]:
    from pystac_client.exceptions import APIError

    try:
        found = client.get_collection(collection)
    except APIError as exc:
        found = None if getattr(exc, "status_code", None) == 404 else exc
    except Exception as exc:
        raise NetworkError(f"STAC API {source.url}, collection {collection}: {_short(exc)}") from None
    if isinstance(found, APIError):
        raise NetworkError(f"STAC API {source.url}, collection {collection}: {_api_problem(found)}") from None
    if found is None:
        raise InputError(f"STAC API {source.url}: has no collection '{collection}'. Give the collection's "
                         "name as this archive spells it.")
    try:
        search = client.search(collections=[collection], bbox=list(bbox), datetime=f"{start}/{end}",
                               query=query or None, limit=250)
        return [item.to_dict() for item in search.items()]
    except APIError as exc:
        raise NetworkError(f"STAC API {source.url}, search of {collection}: {_api_problem(exc)}") from None
    except Exception as exc:
        raise NetworkError(f"STAC API {source.url}, search of {collection}: {_short(exc)}") from None


def search_scenes(
    source: StacSource,
    bbox_wgs84: tuple[float, float, float, float],
    start: dt.date,
    end: dt.date,
    sensors: Iterable[str] = SENSORS,
    modis_products: Iterable[str] = ("MOD11A1",),
    modis_layer: str = "LST_Day_1km",
    max_cloud_cover: float = 80.0,
    timeout: float = 60.0,
) -> list[Scene]:
    """Every scene of ``sensors`` over ``bbox_wgs84`` (lon/lat) from ``start`` to ``end`` (inclusive), by date.

    Landsat scenes above ``max_cloud_cover`` % (the item's ``eo:cloud_cover``) are not returned.
    """
    client = open_client(source, timeout)
    scenes: list[Scene] = []
    if "landsat" in sensors:
        query = {"eo:cloud_cover": {"lte": max_cloud_cover}} if max_cloud_cover < 100 else None
        for item in _search(client, source, source.landsat_collection, bbox_wgs84, start, end, query):
            scene = _landsat_scene(item)
            cloudy = scene is not None and scene.cloud_cover is not None and scene.cloud_cover > max_cloud_cover
            if scene is not None and not cloudy:
                scenes.append(scene)
    if "modis" in sensors:
        for product in modis_products:
            collection = source.modis_collections.get(product)
            if collection is None:
                raise InputError(f"SOURCE: {source.name} has no collection for {product}; give MODIS_COLLECTION "
                                 "or choose another source.")
            for item in _search(client, source, collection, bbox_wgs84, start, end, None):
                scene = _modis_scene(item, product, modis_layer)
                if scene is not None:
                    scenes.append(scene)
    return sorted(scenes, key=lambda s: (s.date, s.sensor, s.product, s.tile, s.item_id))

"""Fusion with a trained network exported to ONNX, run by ONNX Runtime.

The model card embedded in the file says everything inference needs: the channel
roles (one reference pair or two), the size multiple, the units; the normalisation is
inside the graph. The card is read and checked once (a missing or tampered card, or a
model for other inputs, is refused naming the file). Tiles overlap and are blended by
the tiler, so any scene size runs in bounded memory without seams.

Invalid pixels: a network cannot take NaN, so within a tile each channel's gaps are
filled with that channel's mean before inference, and every pixel where an input was
invalid is nodata in the output.

Scene statistics: a network whose output depends on whole-image statistics (MLFF-GAN's
AdaIN; its card's ``scene_moments``) is run twice: a first pass over the same tiles sums
each tile's feature moments over the pixels it owns (its inner part, valid inputs only),
and the second feeds the scene's sums to every tile, so the tiles agree with the whole
scene (the first pass reads the references as given: with SENSOR_BIAS on, the network then
sees corrected ones, whose statistics differ a little). A model of such a network exported
without them still runs, with a warning.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..parameters import param
from .params import (
    CONSISTENCY_LABEL,
    UNCERTAINTY_LABEL,
    allow_implausible_param,
    check_sensor_bias,
    sensor_bias_param,
)

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "shipped"


def shipped_models() -> tuple[str, ...]:
    """Names of the pretrained models shipped in models/shipped/ (their cards say how they were made)."""
    return tuple(sorted(p.stem for p in SHIPPED.glob("*.onnx")))


def model_file_param():
    """MODEL: an ONNX model file (Fuse, Fuse time series, Adapt)."""
    return param("", "MODEL", "ONNX model (a .onnx file written by 'Train STF model')",
                 file_filter="ONNX models (*.onnx);;All files (*)")


def shipped_model_param():
    """SHIPPED_MODEL: a model shipped with the plugin, by name (used when MODEL is empty)."""
    return param("", "SHIPPED_MODEL", "…or a pretrained model shipped with the plugin", options=("", *shipped_models()),
                 option_labels=("(none: use the MODEL file)", *shipped_models()), static=True)


def model_path(model: str, shipped: str) -> str:
    """The model file: MODEL when given, else the shipped model named by SHIPPED_MODEL ('' if neither)."""
    if str(model).strip():
        return str(model)
    return str(SHIPPED / f"{shipped}.onnx") if shipped else ""


def check_model_choice(path: str, shipped: str) -> None:
    """A model file or a known shipped model must be chosen."""
    if not path:
        raise InputError("MODEL: give the .onnx file of a trained model ('Train STF model' writes one), or "
                         f"choose a SHIPPED_MODEL ({', '.join(shipped_models()) or 'none installed'}).")
    if shipped and shipped not in shipped_models():
        raise InputError(f"SHIPPED_MODEL: no shipped model named {shipped!r}; there are: "
                         f"{', '.join(shipped_models()) or 'none'}.")


@dataclass(frozen=True)
class OnnxParams:
    model: str = model_file_param()
    shipped: str = shipped_model_param()
    # 512 px: ONNX Runtime's memory arena grows with the tile (about 0.45 GB for STTFN, 0.65 GB for EDCSTFN
    # at 512², 1.4 and 1.85 GB at 960²) while its speed per pixel barely changes; what a tile size costs is
    # its overlap, computed twice (bench/bench_onnx_fusion.py: tiled against whole-image throughput, and the
    # memory of a 10,000² scene).
    tile: int = param(512, "TILE", "Tile size for deep models (px)", 32, 8192, advanced=True)
    # 16 px: blending gives zero weight to the outer half of the overlap, so a tile equals the whole scene
    # where the network's reach is within 8 px (STTFN, EDCSTFN and MLFF-GAN: 4-6 px at 1e-3 K per K);
    # the model is probed for its reach before any tile runs, and a wider one is named with the overlap it needs.
    overlap: int = param(16, "TILE_OVERLAP", "Overlap of deep-model tiles, blended (px)", 0, 1024, advanced=True)
    # On by default: bench/bench_lst_options.py measures the shipped STTFN best with it (two sample seasons,
    # mean RMSE 2.57 → 2.52 K), and it ties a network's output to MODIS's level, which a model trained on
    # another region misses.
    coarse_consistency: bool = param(True, "COARSE_CONSISTENCY", CONSISTENCY_LABEL)
    sensor_bias: str = sensor_bias_param()
    uncertainty: bool = param(False, "UNCERTAINTY", UNCERTAINTY_LABEL)
    allow_implausible: bool = allow_implausible_param()

    @property
    def path(self) -> str:
        """The model file: MODEL when given, else the shipped model named by SHIPPED_MODEL."""
        return model_path(self.model, self.shipped)

    def validate(self) -> None:
        check_sensor_bias(self.sensor_bias)
        check_model_choice(self.path, self.shipped)
        if self.tile < 32:
            raise InputError(f"TILE must be at least 32 px, got {self.tile}.")
        if not 0 <= 2 * self.overlap < self.tile:
            raise InputError(f"TILE_OVERLAP must lie between 0 and less than half of TILE ({self.tile} px), "
                             f"got {self.overlap}.")


@functools.lru_cache(maxsize=8)
def _card(path: str, mtime: float):
    from models.card import CardError, read_card

    try:
        return read_card(path)
    except CardError as exc:
        raise InputError(str(exc)) from exc


def model_card(path: str | os.PathLike):
    """The validated card of ``path`` (read once per file version)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"MODEL: {p} not found.")
    return _card(str(p.resolve()), p.stat().st_mtime)


def references(params: OnnxParams) -> int:
    return 2 if "fine_t3" in model_card(params.path).roles else 1


@dataclass
class OnnxState:
    card: object
    session: object
    provider: str
    name: str
    moments: np.ndarray | None = None  # the scene's summed feature moments (cards with scene_moments)
    reach: int = 0  # px: how far an input pixel moves the output (:func:`reach`)


def session_options(threads: int | None = None):
    """Intra-op threads = the cores available, full graph optimisation, no per-shape memory pattern."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    options.intra_op_num_threads = threads or cores
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # A memory pattern is planned and kept per input shape; edge tiles have other shapes, so with it
    # the arena holds several plans (STTFN, tiles of 448 and their edges: 840 MB with, 480 MB without,
    # at the same speed).
    options.enable_mem_pattern = False
    return options


def providers() -> list[str]:
    """CUDA when onnxruntime-gpu and a GPU are present, else the CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return (["CUDAExecutionProvider", "CPUExecutionProvider"] if "CUDAExecutionProvider" in available
            else ["CPUExecutionProvider"])


def prepare(params: OnnxParams, progress, cache: dict | None = None, inputs=None) -> OnnxState:
    """The model's card and an ONNX Runtime session (one per series: kept in ``cache``), with the scene's
    feature moments of ``inputs`` when the model takes them (one first pass per date, kept in ``cache``)."""
    cache = {} if cache is None else cache
    if ("onnx", params.path) not in cache:
        cache[("onnx", params.path)] = _session(params, progress)
    state = cache[("onnx", params.path)]
    if inputs is None:
        return state
    if ("onnx reach", params.path) not in cache:
        cache[("onnx reach", params.path)] = _check_reach(state, params, inputs.grid, progress)
    if not state.card.scene_moments:
        return state
    key = ("onnx moments", params.path, params.tile, params.overlap,
           tuple(str(x.path) for pair in inputs.pairs for x in pair), str(inputs.coarse_target.path))
    if key not in cache:
        cache[key] = scene_moments(params, state, inputs, progress)
    return dataclasses.replace(state, moments=cache[key])


def inner_size(params: OnnxParams) -> int:
    """The part of a tile it owns (px): TILE less the overlap on both sides (the registry's tile rows/cols)."""
    return params.tile - 2 * params.overlap


def tile_plan(params: OnnxParams, grid):
    """The tiles fusion runs a network on (what fuse.fusion_plan makes of the registry's entry)."""
    from ..io import tiler

    return tiler.plan(grid, params.overlap, inner_size(params), inner_size(params), even=True)


def scene_moments(params: OnnxParams, state: OnnxState, inputs, progress) -> np.ndarray:
    """The first pass: each tile's feature moments over the pixels it owns (valid inputs), summed."""
    from .inputs import by_role

    plan = tile_plan(params, inputs.grid)
    items = [x for pair in inputs.pairs for x in pair] + [inputs.coarse_target]
    total = np.zeros(state.card.scene_moments)
    unused = np.zeros(state.card.scene_moments, np.float32)  # the graph's scene input; the moments do not use it
    progress.info(f"{state.name}: scene statistics of {inputs.target_date} (a first pass over {len(plan)} tile(s))")
    for tile in plan.tiles():
        progress.check()
        arrays = by_role([item.read(tile.read).data for item in items])
        owned = np.zeros((int(tile.read.height), int(tile.read.width)), np.float32)
        owned[tile.inner] = 1.0
        stack, valid = _network_input(arrays, state.card)
        weight = np.zeros(stack.shape[1:], np.float32)
        weight[: owned.shape[0], : owned.shape[1]] = owned * valid
        if weight.any():
            total += state.session.run(["moments"], {"inputs": stack[None], "moment_weights": weight[None, None],
                                                     "scene_moments": unused})[0]
    return total.astype(np.float32)


def _session(params: OnnxParams, progress) -> OnnxState:
    p = Path(params.path)
    card = model_card(p)
    stat = p.stat()
    state = _open(str(p.resolve()), stat.st_mtime_ns, stat.st_size, params.allow_implausible)
    _warn_without_scene_statistics(card, p.name, progress)
    progress.info(f"{card.title} from {p.name} on ONNX Runtime's {state.provider} "
                  f"(tiles of {params.tile} px, {params.overlap} px blended overlap)")
    return state


@functools.lru_cache(maxsize=4)
def _open(path: str, mtime_ns: int, size: int, allow_implausible: bool) -> OnnxState:
    """A checked session of the model file at ``path`` as it is now, kept for the process (QGIS runs Fuse
    again and again): its first run optimises and packs the weights (a few per cent of a date), and between
    runs it holds only them, the memory arena being released after every date (:func:`release`)."""
    import onnxruntime as ort

    card = model_card(path)
    name = Path(path).name
    try:
        session = ort.InferenceSession(path, session_options(), providers=providers())
    except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
        raise InputError(f"MODEL: {name} cannot be run by ONNX Runtime ({exc}).") from exc
    _probe(session, card, name, allow_implausible)
    return OnnxState(card, session, session.get_providers()[0], card.title, reach=reach(session, card))


def _warn_without_scene_statistics(card, name: str, progress) -> None:
    """A model of a network that needs scene statistics, exported before they were: its tiles differ."""
    from models.registry import MODELS

    spec = MODELS.get(card.model)
    if spec is not None and spec.scene_statistics and not card.scene_moments:
        progress.warn(f"MODEL: {name} was exported without scene statistics, so each tile of the scene uses its own "
                      f"{spec.title} statistics and tiles may differ from the whole by a few tenths of a kelvin; "
                      "train or export it again with this version to make them agree.")


def typical_feeds(session, card, size: int, run_options=None) -> dict[str, np.ndarray]:
    """The graph's inputs for a size × size tile (rounded up to the card's multiple) of typical values,
    the card's means, with the tile's own scene moments when the graph takes them."""
    m = max(1, int(card.size_multiple))
    size = m * max(1, -(-size // m))
    # models/contract.py's rule (fine roles are named fine_*), without importing torch for fusion
    means = [card.normalisation["fine" if role.startswith("fine") else "coarse"]["mean"] for role in card.roles]
    feeds = {"inputs": np.ascontiguousarray(np.broadcast_to(np.asarray(means, np.float32)[None, :, None, None],
                                                            (1, len(means), size, size)))}
    if card.scene_moments:
        weight = np.ones((1, 1, size, size), np.float32)
        moments = session.run(["moments"], {**feeds, "moment_weights": weight,
                                            "scene_moments": np.zeros(card.scene_moments, np.float32)},
                              run_options)[0]
        feeds.update(moment_weights=weight, scene_moments=moments)
    return feeds


def _probe(session, card, name: str, allow_implausible: bool = False) -> None:
    """Run the model once on a small tile of typical values (the card's means): its output must be one
    finite channel of the input's size, as the card promises, and plausible LST, before any tile of the
    scene is read."""
    from ..io.readers import PLAUSIBLE_K

    inputs = [i.name for i in session.get_inputs()]
    expected = GRAPH_INPUTS[bool(card.scene_moments)]
    if inputs != expected:
        raise InputError(f"MODEL: {name} takes inputs {inputs}, not the {', '.join(map(repr, expected))} tensors its "
                         "card promises; it cannot be used for fusion.")
    try:
        feeds = typical_feeds(session, card, 32)
        out = session.run(["lst"], feeds)[0]
    except Exception as exc:  # noqa: BLE001 - ORT raises its own exception types
        raise InputError(f"MODEL: {name} fails on {len(card.roles)} input channels ({', '.join(card.roles)}) as "
                         f"its card says ({type(exc).__name__}); the card does not describe this graph.") from exc
    size = feeds["inputs"].shape[-1]
    means = feeds["inputs"][0, :, 0, 0]
    if out.shape != (1, 1, size, size):
        raise InputError(f"MODEL: {name} returns an array of shape {tuple(out.shape)} for a {size} × {size} px "
                         f"tile; its card promises one LST channel of the tile's size (1, 1, {size}, {size}). "
                         "It cannot be used for fusion.")
    if not np.isfinite(out).all():
        raise InputError(f"MODEL: {name} predicts NaN or infinite values on typical inputs; it cannot be used "
                         "for fusion (was its training diverging?).")
    lo, hi = PLAUSIBLE_K
    median = float(np.median(out))
    if not allow_implausible and not lo - 30 <= median <= hi + 30:
        raise InputError(f"MODEL: {name} predicts {median:.4g} K on typical inputs ({means[0]:.1f} K), which is "
                         f"not land surface temperature ({lo - 30:.0f}-{hi + 30:.0f} K); it was not used. Check "
                         "the model, or set ALLOW_IMPLAUSIBLE to fuse with it anyway.")


def release(state: OnnxState) -> None:
    """Give ONNX Runtime's memory arena back to the system: the arena keeps the largest tile's memory
    (0.45 GB for STTFN at 512 px) for the session's life; a small run asking the arena to shrink frees it,
    and the next date grows it again at a few per cent of a tile's time."""
    import onnxruntime as ort

    options = ort.RunOptions()
    arenas = "cpu:0;gpu:0" if state.provider == "CUDAExecutionProvider" else "cpu:0"
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", arenas)
    state.session.run(["lst"], typical_feeds(state.session, state.card, 32, options), options)  # as small as _probe


REACH_TOLERANCE = 1e-3  # K of output change per K of input change


def reach(session, card, size: int = 96) -> int:
    """How far (px) the model's output moves by more than REACH_TOLERANCE when one input changes by 1 K at
    one pixel (each input in turn: a change of all of them at once cancels in a model of differences),
    on a tile of typical values (the card's means): the context a tile must have for its pixels to
    equal the whole scene's. Returns ``size // 2`` when the reach is at least that."""
    feeds = typical_feeds(session, card, size)  # the scene's moments: fixed, as in tiled fusion
    flat = feeds.pop("inputs")
    size = flat.shape[-1]
    base = session.run(["lst"], {"inputs": flat, **feeds})[0][0, 0]
    change = np.zeros_like(base)
    for channel in range(flat.shape[1]):
        bumped = flat.copy()
        bumped[0, channel, size // 2, size // 2] += 1.0
        change = np.maximum(change, np.abs(session.run(["lst"], {"inputs": bumped, **feeds})[0][0, 0] - base))
    rows, cols = np.nonzero(change > REACH_TOLERANCE)
    if not rows.size:
        return 0
    return int(min(size // 2, max(np.abs(rows - size // 2).max(), np.abs(cols - size // 2).max())))


def _check_reach(state: OnnxState, params: OnnxParams, grid, progress) -> bool:
    """Blending weighs the outer half of a tile's overlap zero: a model reaching further than that gives
    tiles that differ from the whole scene; say so, with the overlap that makes them agree (a scene in
    one tile needs none). Returns whether it warned."""
    if state.reach <= params.overlap // 2 or len(tile_plan(params, grid)) == 1:
        return False
    progress.warn(f"TILE_OVERLAP: {Path(params.path).name}'s output depends on inputs up to {state.reach} px away, "
                  f"more than half of the {params.overlap} px overlap, so its tiles may differ from a whole-scene "
                  f"run by more than {REACH_TOLERANCE:g} K; set TILE_OVERLAP to {2 * state.reach} px or more to make "
                  "them agree.")
    return True


def output_tags(params: OnnxParams, state: OnnxState) -> dict[str, str]:
    """What a fused raster records about the model that made it."""
    return {"FUSION_MODEL": state.card.model, "FUSION_MODEL_FILE": Path(params.path).name,
            "FUSION_EXECUTION_PROVIDER": state.provider}


GRAPH_INPUTS = {False: ["inputs"], True: ["inputs", "moment_weights", "scene_moments"]}


def _network_input(arrays: dict[str, np.ndarray], card) -> tuple[np.ndarray, np.ndarray]:
    """The tile's channels in the card's order, gaps filled and padded to the size multiple, and where
    every input was valid (the tile's own size)."""
    stack = np.stack([np.asarray(arrays[role], np.float32) for role in card.roles])
    valid = np.isfinite(stack).all(axis=0)
    if not valid.any():
        return stack, valid
    for channel in stack:
        bad = ~np.isfinite(channel)
        if bad.any():
            good = channel[~bad]
            channel[bad] = good.mean() if good.size else float(np.nanmean(stack))
    h, w = valid.shape
    m = max(1, int(card.size_multiple))
    ph, pw = (m - h % m) % m, (m - w % m) % m
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "edge"
        stack = np.pad(stack, ((0, 0), (0, ph), (0, pw)), mode=mode)
    return stack, valid


def predict(arrays: dict[str, np.ndarray], state: OnnxState) -> np.ndarray:
    """Fine LST (K) for one tile from arrays keyed by role; NaN where any input is invalid."""
    stack, valid = _network_input(arrays, state.card)
    if not valid.any():
        return np.full(valid.shape, np.nan, np.float32)
    h, w = valid.shape
    feeds = {"inputs": stack[None]}
    if state.card.scene_moments:
        feeds.update(moment_weights=np.ones((1, 1, *stack.shape[1:]), np.float32), scene_moments=state.moments)
    out = state.session.run(["lst"], feeds)[0][0, 0, :h, :w]
    return np.where(valid, out, np.nan).astype(np.float32)

"""Parameters of the classical fusion methods, kept apart from their numba kernels.

The fusion-method registry and the QGIS algorithm read these (defaults, ranges, labels)
without compiling anything; the kernels live in starfm.py and estarfm.py, whose module
docstrings explain how each reflectance threshold was mapped to Kelvin LST.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..parameters import param
from .sensor_bias import MODE_LABELS, MODES

UNCERTAINTY_LABEL = "Also write a per-pixel uncertainty raster (1σ, K; *_uncertainty.tif)"
CONSISTENCY_LABEL = ("Coarse-consistency correction: make the result agree with MODIS at 1 km, less the sensor "
                     "offset of the reference dates")


def allow_implausible_param():
    """Write a prediction whose values are not plausible LST (a model being debugged), instead of refusing it."""
    return param(False, "ALLOW_IMPLAUSIBLE", "Write the prediction even if its values are not plausible LST "
                 "(checked: 150-390 K)", advanced=True)


def sensor_bias_param(default: str = "none"):
    """SENSOR_BIAS, the same choices for every method (backend/fusion/sensor_bias.py)."""
    return param(default, "SENSOR_BIAS", "Sensor-bias correction of the fine references", options=MODES,
                 option_labels=MODE_LABELS)


def check_sensor_bias(value: str) -> None:
    if value not in MODES:
        raise InputError(f"SENSOR_BIAS must be one of {', '.join(MODES)}, got {value!r}.")


@dataclass(frozen=True)
class StarfmParams:
    # 1,500 m at 30 m (a 750 m search distance, as in the reference code)
    window: int = param(51, "WINDOW", "Window size (fine pixels, odd)", 3, 401)
    # m: similar pixels are within 2σ/m of the centre
    classes: int = param(4, "CLASSES", "Number of classes", 1, 50)
    # σ_F in K (0.002 reflectance on a 100 K LST span)
    fine_uncertainty: float = param(0.2, "FINE_UNCERTAINTY", "STARFM fine uncertainty (K)", 0.0, advanced=True)
    # σ_C in K (0.005 reflectance)
    coarse_uncertainty: float = param(0.5, "COARSE_UNCERTAINTY", "STARFM coarse uncertainty (K)", 0.0,
                                      advanced=True)
    coarse_consistency: bool = param(False, "COARSE_CONSISTENCY", CONSISTENCY_LABEL)
    sensor_bias: str = sensor_bias_param()
    uncertainty: bool = param(False, "UNCERTAINTY", UNCERTAINTY_LABEL)
    allow_implausible: bool = allow_implausible_param()
    spatial_importance: float | None = None  # A in px; None = half the window
    epsilon: float = 0.01  # K, added to S and T before inverting (the reference code's +1 DN)

    def validate(self) -> None:
        check_sensor_bias(self.sensor_bias)
        if self.window < 3 or self.window % 2 == 0:
            raise InputError(f"WINDOW must be an odd number of pixels ≥ 3, got {self.window}.")
        if self.classes < 1:
            raise InputError(f"CLASSES must be at least 1, got {self.classes}.")
        if min(self.fine_uncertainty, self.epsilon) < 0:
            raise InputError(f"FINE_UNCERTAINTY ({self.fine_uncertainty:g} K) and epsilon ({self.epsilon:g} K) "
                             "must not be negative.")
        if not self.coarse_uncertainty > 0:
            raise InputError(
                f"COARSE_UNCERTAINTY must be greater than 0 K (MODIS LST's noise; 0.5 K by default), got "
                f"{self.coarse_uncertainty:g}: STARFM keeps neighbours whose change is below the centre's plus "
                "this margin, so with 0 none qualifies and nothing can be predicted.")

    @property
    def half(self) -> int:
        return self.window // 2

    @property
    def importance(self) -> float:
        return float(self.spatial_importance or self.half)


@dataclass(frozen=True)
class EstarfmParams:
    # half-window 25, as in the reference code
    window: int = param(51, "WINDOW", "Window size (fine pixels, odd)", 3, 401)
    classes: int = param(4, "CLASSES", "Number of classes", 1, 50)
    # Both on by default: bench/bench_lst_options.py measures ESTARFM best with them on two sample
    # seasons (mean RMSE 2.87 → 2.57 K; heat waves 2.91 → 2.61 K, where ESTARFM mis-scales the change).
    coarse_consistency: bool = param(True, "COARSE_CONSISTENCY", CONSISTENCY_LABEL)
    sensor_bias: str = sensor_bias_param("landsat")
    uncertainty: bool = param(False, "UNCERTAINTY", UNCERTAINTY_LABEL)
    allow_implausible: bool = allow_implausible_param()
    min_similar: int = 5  # more than this many similar pixels are needed for the full model
    # K (2 % of a 100 K span)
    min_coarse_change: float = param(2.0, "MIN_COARSE_CHANGE", "ESTARFM minimum coarse change for regression (K)",
                                     0.0, advanced=True)
    max_slope: float = 5.0
    significance: float = 0.05
    valid_range: tuple[float, float] = (180.0, 360.0)  # K

    def validate(self) -> None:
        check_sensor_bias(self.sensor_bias)
        if self.window < 3 or self.window % 2 == 0:
            raise InputError(f"WINDOW must be an odd number of pixels ≥ 3, got {self.window}.")
        if self.classes < 1 or self.min_similar < 0:
            raise InputError(f"CLASSES must be ≥ 1 (got {self.classes}) and MIN_SIMILAR ≥ 0 (got {self.min_similar}).")
        if not self.valid_range[0] < self.valid_range[1]:
            raise InputError("The valid LST range must be (low, high) with low < high.")

    @property
    def half(self) -> int:
        return self.window // 2


@dataclass(frozen=True)
class SeasonParams:
    # e-folding time of a reference's weight in the prediction (days): 32 (a Landsat revisit or two) was best
    # among 16, 32 and 64 on the sample seasons of bench/bench_lst_options.py while designing the method.
    memory_days: float = param(32.0, "MEMORY_DAYS", "Season regression: time scale of the references' weight (days)",
                               1.0, 3650.0)
    # λ (K²) of the ridge that pulls each pixel's gain towards 1 (MODIS's change passed on as it is): a pixel
    # whose MODIS varied by σ over the season keeps σ²/(σ² + λ) of its own estimate.
    gain_shrinkage: float = param(8.0, "GAIN_SHRINKAGE", "Season regression: shrinkage of the per-pixel gain "
                                  "towards 1 (K²)", 0.0, advanced=True)
    max_gain: float = param(3.0, "MAX_GAIN", "Season regression: largest per-pixel gain", 1.0, 10.0, advanced=True)
    # Weight of a gap-filled reference pixel (1 = observed): its value is an estimate, not an observation.
    filled_weight: float = param(0.5, "FILLED_WEIGHT", "Season regression: weight of gap-filled reference pixels "
                                 "(observed = 1)", 0.0, 1.0, advanced=True)
    # Extra weight of references about a year (or years) away on the same day of year (±20 days): the same
    # phenological state. On the three bench seasons (with consistency) 0 / 0.3 / 1 give 2.19 / 2.11 / 2.05 K;
    # 0.3, because the generator repeats each parcel's crop every year, where real fields rotate.
    season_weight: float = param(0.3, "SEASON_WEIGHT", "Season regression: extra weight of references on the "
                                 "same day of another year", 0.0, 10.0, advanced=True)
    # On by default: bench/bench_lst_options.py's defaults rule picks it on three seasons of two climates (mean
    # RMSE 2.14 → 2.11 K; no kind of difficult date worse than resampled MODIS).
    coarse_consistency: bool = param(True, "COARSE_CONSISTENCY", CONSISTENCY_LABEL)
    sensor_bias: str = sensor_bias_param()
    uncertainty: bool = param(False, "UNCERTAINTY", UNCERTAINTY_LABEL)
    allow_implausible: bool = allow_implausible_param()

    def validate(self) -> None:
        check_sensor_bias(self.sensor_bias)
        if not self.memory_days > 0:
            raise InputError(f"MEMORY_DAYS must be greater than 0 days, got {self.memory_days:g}.")
        if self.gain_shrinkage < 0:
            raise InputError(f"GAIN_SHRINKAGE must not be negative, got {self.gain_shrinkage:g}.")
        if not self.max_gain >= 1:
            raise InputError(f"MAX_GAIN must be at least 1, got {self.max_gain:g}.")
        if not 0 <= self.filled_weight <= 1:
            raise InputError(f"FILLED_WEIGHT must lie between 0 and 1, got {self.filled_weight:g}.")
        if self.season_weight < 0:
            raise InputError(f"SEASON_WEIGHT must not be negative, got {self.season_weight:g}.")

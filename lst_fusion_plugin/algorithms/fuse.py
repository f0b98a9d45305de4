"""Processing algorithm: fuse fine and coarse LST into fine LST on the prediction date."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from .base import LSTAlgorithm, add_advanced, backend_errors, enum_value, progress_from, style_output
from .gapfill import UNITS

METHODS = [("starfm", "STARFM (one reference pair)"), ("estarfm", "ESTARFM (two reference pairs around the date)")]
INT, DOUBLE = QgsProcessingParameterNumber.Integer, QgsProcessingParameterNumber.Double


class FuseAlgorithm(LSTAlgorithm):
    NAME = "fuse"
    DISPLAY = "Fuse MODIS and Landsat LST"
    GROUP = "fusion"
    HELP = (
        "Predicts fine (Landsat-resolution) LST on a date where only MODIS exists.\n\n"
        "STARFM (Gao et al., 2006) uses one reference pair — Landsat and MODIS of the same date (t1) — "
        "and MODIS at the prediction date (t2). ESTARFM (Zhu et al., 2010) uses two pairs, before (t1) "
        "and after (t3) the prediction date, and learns the fine/coarse conversion coefficient by "
        "regression. All MODIS rasters must already be on the Landsat grid (Resample to a reference "
        "grid); dates are read from the files.\n\n"
        "WINDOW is the moving window in fine pixels (51 = 1.5 km at 30 m); CLASSES sets how alike "
        "similar pixels must be (2σ/CLASSES). Thresholds of the reflectance originals are mapped to "
        "LST (see the documentation): sensor uncertainties 0.2 K (fine) and 0.5 K (coarse), minimum "
        "coarse change 2 K. Pixels without valid inputs are left nodata and counted."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterEnum("METHOD", "Method", [m[1] for m in METHODS], defaultValue=0))
        self.addParameter(QgsProcessingParameterRasterLayer("FINE_T1", "Fine LST at t1 (Landsat)"))
        self.addParameter(QgsProcessingParameterRasterLayer("COARSE_T1", "Coarse LST at t1 (MODIS on the fine grid)"))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "COARSE_T2", "Coarse LST at the prediction date t2 (MODIS on the fine grid)"))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "FINE_T3", "Fine LST at t3, after t2 (ESTARFM)", optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "COARSE_T3", "Coarse LST at t3 (ESTARFM)", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            "WINDOW", "Window size (fine pixels, odd)", INT, 51, False, 3, 401))
        self.addParameter(QgsProcessingParameterNumber("CLASSES", "Number of classes", INT, 4, False, 1, 50))
        advanced = [
            QgsProcessingParameterNumber("FINE_UNCERTAINTY", "STARFM fine uncertainty (K)", DOUBLE, 0.2, False, 0.0),
            QgsProcessingParameterNumber("COARSE_UNCERTAINTY", "STARFM coarse uncertainty (K)", DOUBLE, 0.5, False,
                                         0.0),
            QgsProcessingParameterNumber("MIN_COARSE_CHANGE", "ESTARFM minimum coarse change for regression (K)",
                                         DOUBLE, 2.0, False, 0.0),
            QgsProcessingParameterEnum("UNIT", "Unit of float inputs", [u[1] for u in UNITS], defaultValue=0),
        ]
        add_advanced(self, advanced)
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Fused LST"))
        self.addOutput(QgsProcessingOutputString("DATE", "Prediction date"))
        self.addOutput(QgsProcessingOutputNumber("VALID_FRACTION", "Fraction of pixels predicted"))
        self.addOutput(QgsProcessingOutputNumber("NODATA_PIXELS", "Pixels without valid input"))

    def _path(self, parameters, name, context):
        layer = self.parameterAsRasterLayer(parameters, name, context)
        return layer.source() if layer is not None else None

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with backend_errors():
            from backend.errors import InputError
            from backend.estarfm import EstarfmParams
            from backend.fuse import fuse
            from backend.starfm import StarfmParams

            method = enum_value(self, parameters, "METHOD", context, METHODS)
            window = self.parameterAsInt(parameters, "WINDOW", context)
            classes = self.parameterAsInt(parameters, "CLASSES", context)
            pairs = [(self._path(parameters, "FINE_T1", context), self._path(parameters, "COARSE_T1", context))]
            fine3, coarse3 = self._path(parameters, "FINE_T3", context), self._path(parameters, "COARSE_T3", context)
            if bool(fine3) != bool(coarse3):
                raise InputError("The second reference pair needs both FINE_T3 and COARSE_T3; only "
                                 f"{'FINE_T3' if fine3 else 'COARSE_T3'} was given.")
            if fine3:
                pairs.append((fine3, coarse3))  # the backend refuses it for one-pair methods, never ignores it
            if method == "estarfm":
                if not fine3:
                    raise InputError("ESTARFM needs the second reference pair: FINE_T3 and COARSE_T3.")
                params = EstarfmParams(window=window, classes=classes, min_coarse_change=self.parameterAsDouble(
                    parameters, "MIN_COARSE_CHANGE", context))
            else:
                params = StarfmParams(
                    window=window, classes=classes,
                    fine_uncertainty=self.parameterAsDouble(parameters, "FINE_UNCERTAINTY", context),
                    coarse_uncertainty=self.parameterAsDouble(parameters, "COARSE_UNCERTAINTY", context))
            output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
            result = fuse(method, pairs, self._path(parameters, "COARSE_T2", context), output, params,
                          unit=enum_value(self, parameters, "UNIT", context, UNITS), progress=progress_from(feedback))
        style_output(context, output, f"LST {result.target_date} {method.upper()}")
        return {"OUTPUT": output, "DATE": result.target_date, "VALID_FRACTION": result.valid_fraction,
                "NODATA_PIXELS": result.nodata_pixels}

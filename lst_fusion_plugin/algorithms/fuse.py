"""Processing algorithm: fuse fine and coarse LST into fine LST on the prediction date.

Methods and their parameters come from the backend's fusion-method registry and the
methods' parameter dataclasses: a method added there appears here with its parameters.
"""

from __future__ import annotations

import functools

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from .base import (
    LSTAlgorithm,
    backend_errors,
    lst_layer_name,
    progress_from,
    raster_source,
    style_output,
)
from .method_params import OPTIONS_HELP, add_method_parameters, method_and_params, methods_help, output_label
from .params import input_unit, input_unit_parameter, output_unit, output_unit_parameter


class FuseAlgorithm(LSTAlgorithm):
    NAME = "fuse"
    DISPLAY = "Fuse MODIS and Landsat LST"
    GROUP = "fusion"
    HELP = (
        "Predicts fine (Landsat-resolution) LST on a date where only MODIS exists.\n\n"
        "STARFM (Gao et al., 2006) uses one reference pair — Landsat and MODIS of the same date (t1) — "
        "and MODIS at the prediction date (t2). ESTARFM (Zhu et al., 2010) uses two pairs, before (t1) "
        "and after (t3) the prediction date, and learns the fine/coarse conversion coefficient by "
        "regression. The season regression takes every pair given (FINE_T1/COARSE_T1, FINE_T3/COARSE_T3 and "
        "the further pairs REFERENCE_FINE/REFERENCE_COARSE, matched by date). A trained deep model (EDCSTFN, "
        "STTFN or MLFF-GAN exported to ONNX by 'Train STF "
        "model') runs with ONNX Runtime (CUDA when onnxruntime-gpu finds a GPU); its model card says whether "
        "it takes one pair or two. All MODIS rasters must already be on the Landsat grid (Resample to a "
        "reference grid); dates are read from the files.\n\n"
        "WINDOW is the moving window in fine pixels (51 = 1.5 km at 30 m); CLASSES sets how alike "
        "similar pixels must be (2σ/CLASSES). Thresholds of the reflectance originals are mapped to "
        "LST (see the documentation): sensor uncertainties 0.2 K (fine) and 0.5 K (coarse), minimum "
        "coarse change 2 K. Deep models run on overlapping tiles (TILE, TILE_OVERLAP) blended without "
        "seams. Pixels without valid inputs are left nodata and counted.\n\n"
        + OPTIONS_HELP
    )

    def help_text(self) -> str:
        return f"{self.HELP}\n\n{methods_help()}"

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer("FINE_T1", "Fine LST at t1 (Landsat)"))
        self.addParameter(QgsProcessingParameterRasterLayer("COARSE_T1", "Coarse LST at t1 (MODIS on the fine grid)"))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "COARSE_T2", "Coarse LST at the prediction date t2 (MODIS on the fine grid)"))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "FINE_T3", "Fine LST at t3, after t2 (two-pair methods)", optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            "COARSE_T3", "Coarse LST at t3 (two-pair methods)", optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            "REFERENCE_FINE", "Further fine references (multi-date methods; paired with REFERENCE_COARSE by date)",
            layerType=QgsProcessing.TypeFile, optional=True))
        self.addParameter(QgsProcessingParameterMultipleLayers(
            "REFERENCE_COARSE", "Further coarse references of the same dates (multi-date methods)",
            layerType=QgsProcessing.TypeFile, optional=True))
        add_method_parameters(self, [input_unit_parameter()])
        self.addParameter(output_unit_parameter())
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Fused LST"))
        self.addOutput(QgsProcessingOutputString("DATE", "Prediction date"))
        self.addOutput(QgsProcessingOutputNumber("VALID_FRACTION", "Fraction of pixels predicted"))
        self.addOutput(QgsProcessingOutputNumber("NODATA_PIXELS", "Pixels without valid input"))
        self.addOutput(QgsProcessingOutputString("UNCERTAINTY", "Uncertainty raster (1σ, K), when asked for"))

    def _further_pairs(self, spec, params, parameters, context) -> list[tuple[str, str]]:
        """REFERENCE_FINE/REFERENCE_COARSE paired by date, for methods that take every pair given."""
        from backend.errors import InputError
        from backend.fusion.inputs import EVERY_PAIR, pairs_by_date

        fine, coarse = ([p for p in (self.parameterAsFileList(parameters, name, context) or []) if p]
                        for name in ("REFERENCE_FINE", "REFERENCE_COARSE"))
        if not fine and not coarse:
            return []
        if spec.references(params) != EVERY_PAIR:
            raise InputError(f"REFERENCE_FINE/REFERENCE_COARSE are for methods that use every pair given (Season "
                             f"regression); {spec.short} uses {spec.references(params)}: leave them empty.")
        return pairs_by_date(fine, coarse)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        with backend_errors():
            from backend.errors import InputError
            from backend.fusion.fuse import fuse

            spec, params = method_and_params(self, parameters, context, feedback)
            source = functools.partial(raster_source, self, parameters, context=context)
            pairs = [(source("FINE_T1"), source("COARSE_T1"))]
            fine3, coarse3 = source("FINE_T3"), source("COARSE_T3")
            if bool(fine3) != bool(coarse3):
                raise InputError("The second reference pair needs both FINE_T3 and COARSE_T3; only "
                                 f"{'FINE_T3' if fine3 else 'COARSE_T3'} was given.")
            if fine3:
                pairs.append((fine3, coarse3))  # the backend refuses it for one-pair methods, never ignores it
            pairs += self._further_pairs(spec, params, parameters, context)
            output = self.parameterAsOutputLayer(parameters, "OUTPUT", context)
            unit = output_unit(self, parameters, context)
            result = fuse(spec.name, pairs, source("COARSE_T2"), output, params,
                          unit=input_unit(self, parameters, context), progress=progress_from(feedback),
                          out_unit=unit)
        style_output(context, output, lst_layer_name(f"{result.target_date} {output_label(spec, params)}", unit), unit)
        return {"OUTPUT": output, "DATE": result.target_date, "VALID_FRACTION": result.valid_fraction,
                "NODATA_PIXELS": result.nodata_pixels, "UNCERTAINTY": str(result.uncertainty or "")}

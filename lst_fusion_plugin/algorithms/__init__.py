"""One thin QgsProcessingAlgorithm per pipeline stage."""

from .adapt import AdaptModelAlgorithm
from .download import DownloadLSTAlgorithm
from .evaluate import EvaluateAlgorithm
from .fuse import FuseAlgorithm
from .fuse_series import FuseSeriesAlgorithm
from .gapfill import GapFillAlgorithm
from .import_lst import ImportLSTAlgorithm
from .patches import BuildPatchesAlgorithm
from .resample import ResampleAlgorithm
from .sample_data import GenerateSampleDatasetAlgorithm
from .train import TrainAlgorithm

ALGORITHMS = [GenerateSampleDatasetAlgorithm, DownloadLSTAlgorithm, ImportLSTAlgorithm,
              GapFillAlgorithm, ResampleAlgorithm,
              BuildPatchesAlgorithm, TrainAlgorithm, AdaptModelAlgorithm, FuseAlgorithm, FuseSeriesAlgorithm,
              EvaluateAlgorithm]

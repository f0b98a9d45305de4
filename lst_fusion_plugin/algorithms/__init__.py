"""One thin QgsProcessingAlgorithm per pipeline stage."""

from .import_lst import ImportLSTAlgorithm
from .sample_data import GenerateSampleDatasetAlgorithm

ALGORITHMS = [GenerateSampleDatasetAlgorithm, ImportLSTAlgorithm]

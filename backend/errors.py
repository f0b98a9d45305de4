"""Specific error types, so callers (and the QGIS glue) can tell input faults from bugs."""


class LSTFusionError(Exception):
    """Base class of every error the backend raises on purpose."""


class InputError(LSTFusionError, ValueError):
    """An input file or parameter is unusable; the message names it and says what to do."""


class UnknownProductError(InputError):
    """A file is not one of the LST products the readers understand."""


class CompanionFileError(UnknownProductError):
    """A file the project wrote beside LST (fill flags, masks): not LST itself."""


class UnitError(InputError):
    """Values do not look like the declared temperature unit."""


class EmptyDataError(InputError):
    """A raster holds no valid pixel (all fill, all cloud)."""


class TrainingDiverged(InputError):
    """Training's loss became non-finite or exploded; nothing was exported."""


class OutputError(LSTFusionError):
    """An output cannot be written where asked (or its write failed); nothing the user had was changed."""


class Cancelled(LSTFusionError):
    """The user cancelled the run; partial outputs have been removed."""


class Interrupted(Cancelled):
    """A signal (Ctrl-C, SIGTERM) stopped the run; partial outputs have been removed."""


class ClusterLost(Cancelled):
    """The Dask cluster stopped serving the run (no worker left, scheduler gone); finished work is kept."""

"""Progress reporting and cancellation shared by every stage.

Stages take an optional :class:`Progress`; the QGIS glue builds one from a
``QgsProcessingFeedback``, tests and scripts from plain callables (or none).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

from .errors import Cancelled
from .io.atomic import raise_if_signalled


class LSTWarning(UserWarning):
    """Something looks wrong but the run can go on (e.g. an implausible unit)."""


@dataclass
class Progress:
    """Callbacks for progress (0..1), messages, warnings and a cancellation poll."""

    on_progress: Callable[[float], None] | None = None
    on_message: Callable[[str], None] | None = None
    on_warning: Callable[[str], None] | None = None
    is_cancelled: Callable[[], bool] | None = None
    start: float = 0.0
    end: float = 1.0

    def check(self) -> None:
        """Raise :class:`Cancelled` when the user asked to stop (or :class:`Interrupted` after a signal)."""
        raise_if_signalled()
        if self.is_cancelled is not None and self.is_cancelled():
            raise Cancelled("Cancelled by the user.")

    def update(self, fraction: float, message: str | None = None) -> None:
        """Report ``fraction`` (0..1) of this (sub-)task done, then poll cancellation."""
        if self.on_progress is not None:
            f = min(max(fraction, 0.0), 1.0)
            self.on_progress(self.start + (self.end - self.start) * f)
        if message:
            self.info(message)
        self.check()

    def info(self, message: str) -> None:
        if self.on_message is not None:
            self.on_message(message)

    def warn(self, message: str) -> None:
        if self.on_warning is not None:
            self.on_warning(message)
        else:
            warnings.warn(message, LSTWarning, stacklevel=2)

    def sub(self, start: float, end: float) -> Progress:
        """A view reporting into the ``[start, end]`` part of this task."""
        span = self.end - self.start
        return Progress(
            self.on_progress,
            self.on_message,
            self.on_warning,
            self.is_cancelled,
            self.start + span * start,
            self.start + span * end,
        )


def ensure(progress: Progress | None) -> Progress:
    """The given progress, or a silent one, so stages need no ``if progress`` checks."""
    return progress if progress is not None else Progress()

"""Errors a user can cause. Every message names the bad input and the fix."""
from __future__ import annotations

from typing import Iterable, Sequence


class KaggleKitError(Exception):
    """Base class: something about the input or the environment needs fixing."""


class TableError(KaggleKitError, ValueError):
    """A label table or the files it points at are inconsistent."""


class LayoutError(KaggleKitError, ValueError):
    """A competition directory does not have the layout that was asked for."""


class ImageError(KaggleKitError, ValueError):
    """One or more image files cannot be decoded."""


class KaggleApiError(KaggleKitError, RuntimeError):
    """The Kaggle API refused a request or could not be reached."""


class CredentialsError(KaggleApiError):
    """No usable Kaggle credentials were found."""


class ArchiveError(KaggleKitError, ValueError):
    """An archive is corrupt or unsafe to unpack."""


class SubmissionError(KaggleKitError, ValueError):
    """A submission file does not match the shape the competition expects."""


class WeightsError(KaggleKitError, ValueError):
    """Backbone weights cannot be found or loaded."""


class ConfigError(KaggleKitError, ValueError):
    """An argument has a value that is not supported."""


class DiskSpaceError(KaggleKitError, OSError):
    """Not enough free disk space for a download and its unpacking."""


class SourceError(KaggleKitError, ValueError):
    """A competition source is neither a slug nor a folder or archive kagglekit can read."""


class SourceNotFoundError(SourceError, FileNotFoundError):
    """A folder, archive or file named as (part of) a competition source does not exist."""


class StateError(KaggleKitError, ValueError):
    """A saved learner or an interrupted run's state cannot be used as it is."""


class PlanError(KaggleKitError, ValueError):
    """A time budget or a run plan cannot be honoured (bad duration, budget too short)."""


def list_offenders(items: Sequence[object] | Iterable[object], limit: int = 5) -> str:
    """Return 'a, b, c (and N more; 7 in all)' for the first `limit` offenders."""
    items = list(items)
    shown = ", ".join(str(x) for x in items[:limit])
    if len(items) > limit:
        shown += f" (and {len(items) - limit} more; {len(items)} in all)"
    return shown


class PositiveClassError(SubmissionError):
    """A single probability column must hold P(positive class), and which class is positive is not known."""

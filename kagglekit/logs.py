"""The one `kagglekit` logger: library code logs, the CLI and `run(log=...)` decide what is shown.

Library modules call ``logger.info(...)`` (what a user wants to see while a run goes on) and
``logger.warning(...)`` (something that needs attention). Nothing is printed until an application
attaches a handler; :func:`to_stream` attaches a plain one, as the command line does.
"""
from __future__ import annotations

import contextlib
import logging
import sys
from typing import IO, Callable, Iterator

logger = logging.getLogger("kagglekit")
logger.addHandler(logging.NullHandler())

_HANDLER_FLAG = "_kagglekit_stream"


def to_stream(stream: IO[str] | None = None, level: int = logging.INFO) -> logging.Handler:
    """Return the handler that now shows kagglekit's messages on `stream` (stdout by default), one plain line each.

    Calling it again replaces the handler it added before, so messages are never shown twice.
    """
    for old in [h for h in logger.handlers if getattr(h, _HANDLER_FLAG, False)]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    setattr(handler, _HANDLER_FLAG, True)
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler


class _CallableHandler(logging.Handler):
    """Hands each message, as plain text, to a callable such as `print`."""

    def __init__(self, fn: Callable[[str], object]) -> None:
        super().__init__(logging.INFO)
        self.fn = fn
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.fn(self.format(record))  # an error in `fn` reaches the caller, as a direct call would


@contextlib.contextmanager
def shown(log: Callable[[str], object] | bool | None) -> Iterator[None]:
    """Yield while kagglekit's messages (INFO and above) also go to `log`: the `log=` argument of `run` and `demo`.

    `log` is a callable that receives each message as one line of text (``print``
    shows them on stdout), True (the same as ``print``), or None / False: nothing
    added, so messages go only where the application's logging sends them (the
    command line's `to_stream` handler; nowhere by default).
    """
    if log is None or log is False:
        yield
        return
    fn = print if log is True else log
    if not callable(fn):
        raise TypeError(f"log= takes a callable such as print, or None/False for no output, not {log!r}.")
    handler = _CallableHandler(fn)
    level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)

"""The one `kagglekit` logger: library code logs, the CLI and `run(log=...)` decide what is shown.

Library modules call ``logger.info(...)`` (what a user wants to see while a run goes on) and
``logger.warning(...)`` (something that needs attention). Nothing is printed until an application
attaches a handler; :func:`to_stream` attaches a plain one, as the command line does.
"""
from __future__ import annotations

import logging
import sys
from typing import IO

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

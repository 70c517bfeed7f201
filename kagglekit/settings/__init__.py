"""Every setting a run takes, declared once and checked at the boundary.

`SETTINGS` is the one schema: each `Setting` names its type, range or choices,
default, the recipe section that sets it, its CLI flag(s) and its help text. It is
used by

- the ``kagglekit run`` parser (`add_arguments` generates the flags, `from_cli`
  converts and checks what was typed),
- the recipe reader (`check_recipe`: every section, key and value of a TOML/JSON recipe),
- ``kk.run`` (`check_run_arguments` and `check_keywords`: its arguments and keyword settings),
- the reference table ``docs/settings.md`` (`markdown`; regenerate it with
  ``python -m kagglekit.settings > docs/settings.md``; a test keeps the two equal).

Every value is checked before any work: its type (``epochs = 1.5``, ``flip = "no"``
are refused, never coerced), its range (``lr = 0``) and its choices. A string where a
list is expected is refused, never iterated character by character. An unknown
section or key is refused with the closest valid name ("did you mean ...?"). Every
refusal is a `ConfigError`: one line naming the setting, the value and the fix.

Adding a setting is one `Setting` entry in `SETTINGS` (then regenerate the docs).
"""
from __future__ import annotations

from .check import (Origin, check_fine_tune, check_keywords, check_recipe, check_run_arguments, check_value,
                    fine_tune_parameters)
from .flags import add_arguments, from_cli, markdown
from .schema import LAYOUT_READERS, SECTIONS, SET_BY_RUN, SETTINGS, Setting, defaults, get, section_settings, suggest

__all__ = ["LAYOUT_READERS", "SECTIONS", "SET_BY_RUN", "SETTINGS", "Origin", "Setting", "add_arguments", "check_fine_tune",
           "check_keywords", "check_recipe", "check_run_arguments", "check_value", "defaults", "fine_tune_parameters",
           "from_cli", "get", "markdown", "section_settings", "suggest"]

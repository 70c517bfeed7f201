"""The settings a run starts from and the recipe file that holds them (TOML or JSON)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..settings import SET_BY_RUN, check_recipe, defaults, section_settings

# Settings a run starts from: the recipe's [train] settings as declared in `kagglekit.settings`. None for backbone,
# sizes, epochs and batch_size: planned from the time budget, the hardware and the images (`kagglekit.plan.make_plan`);
# a value given always wins (tta "auto": the number of views that helps on validation; lr None: the recipe's default;
# metric None: from the submission format; flip None: judged from the images).
DEFAULTS: dict[str, Any] = defaults("train")

# What `run` passes to `kagglekit.layout.detect` when given (CLI flags / the recipe's [layout] keys:
# `kagglekit.layout.OVERRIDES` names each one's flag).
LAYOUT_KEYS = tuple(k for k in section_settings("layout") if k not in ("reader", "args"))


# fine_tune arguments the run passes itself: the data and the [train] settings (a [fine_tune] section may not repeat them)
_SET_BY_RUN = SET_BY_RUN


def load_recipe(path: str | os.PathLike | None) -> dict:
    """Return the settings in a recipe file (TOML or JSON), each checked (`kagglekit.settings.check_recipe`), or {} when no file is given."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"No recipe file at {path}; give the path of a .toml or .json recipe.")
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ConfigError(f"The recipe {path} is neither a .toml nor a .json file; kagglekit reads recipes in TOML or "
                          "JSON only: write it as recipe.toml or recipe.json (docs/settings.md lists the keys).")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark (Windows editors) is not part of the recipe
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"The recipe {path} cannot be read as UTF-8 text ({exc}); save it as a UTF-8 .toml or .json file.") from None
    toml = _toml_parser(path) if suffix == ".toml" else None
    try:
        data = toml.loads(text) if toml is not None else json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise ConfigError(f"The recipe {path} sets {exc} twice in one table (JSON keeps only the last silently); "
                          "keep one of them.") from None
    except Exception as exc:  # tomllib.TOMLDecodeError / json.JSONDecodeError
        raise ConfigError(f"The recipe {path} is not valid {'TOML' if toml is not None else 'JSON'}: "
                          f"{' '.join(str(exc).split())}; fix the line it names.") from None
    return check_recipe(data, f"the recipe {path}")


class _DuplicateKey(ValueError):
    """A key a JSON object holds twice (its text: the key)."""


def _unique_keys(pairs: list) -> dict:
    """Return the JSON object of `pairs`; raise `_DuplicateKey` for a key given twice (TOML refuses it too)."""
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(repr(key))
        out[key] = value
    return out


def _toml_parser(path: Path) -> Any:
    """Return the TOML parser: `tomllib` (Python 3.11+), else `tomli` (its backport, installed with kagglekit on 3.10)."""
    try:
        import tomllib

        return tomllib
    except ImportError:
        pass
    try:
        import tomli

        return tomli
    except ImportError:
        raise ConfigError(f"Reading the TOML recipe {path} needs Python 3.11+ or the tomli package; "
                          "pip install 'tomli>=2' (or write the recipe as JSON).") from None


def _layout_settings(recipe: dict, overrides: dict) -> tuple[dict, dict]:
    """Return (the recipe's reader form {reader, args, test} or {}, the `detect` overrides), overrides winning over the recipe."""
    spec = dict(recipe.get("layout") or {})
    unknown = set(spec) - set(LAYOUT_KEYS) - {"reader", "args"}
    if unknown:
        raise ConfigError(f"Unknown keys {sorted(unknown)} in the recipe's [layout] section; known: reader, args, "
                          f"{', '.join(LAYOUT_KEYS)}.")
    given = {k: spec.pop(k) for k in LAYOUT_KEYS if k in spec}
    given.update({k: overrides[k] for k in LAYOUT_KEYS if overrides.get(k) is not None})
    return spec, given



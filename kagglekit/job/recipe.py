"""The settings a run starts from and the recipe file that holds them (TOML or JSON)."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError

# Settings a run starts from. None for backbone, sizes, epochs and batch_size: planned from the time
# budget, the hardware and the images (`kagglekit.plan.make_plan`); a value given always wins.
DEFAULTS: dict[str, Any] = {
    "backbone": None,
    "sizes": None,
    "epochs": None,
    "weights": "imagenet",
    "valid": 0.2,
    "tta": "auto",  # the number of TTA views that helps on validation (0 up to the plan's cap)
    "seed": 0,
    "batch_size": None,
    "lr": None,  # the recipe's default
    "metric": None,  # inferred from the submission format
    "flip": None,  # horizontal flips in training and TTA; None: judged from the images (fine_tune's flip_check)
}

# What `run` passes to `kagglekit.layout.detect` when given (CLI flags / the recipe's [layout] keys:
# `kagglekit.layout.OVERRIDES` names each one's flag).
LAYOUT_KEYS = ("multilabel", "positive", "group_col", "id_col", "label_col", "id_extension", "test")


# fine_tune arguments the run passes itself: the data and the [train] settings (a [fine_tune] section may not repeat them)
_SET_BY_RUN = frozenset({"data", "valid", "backbone", "sizes", "epochs", "weights", "batch_size", "seed", "workdir", "lr",
                        "flip"})


def load_recipe(path: str | os.PathLike | None) -> dict:
    """Return the settings in a recipe file (TOML or JSON), or {} when no file is given."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"No recipe file at {path}; give the path of a .toml or .json recipe.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"The recipe {path} cannot be read as UTF-8 text ({exc}); save it as a UTF-8 .toml or .json file.") from None
    toml = _toml_parser(path) if path.suffix == ".toml" else None
    try:
        return toml.loads(text) if toml is not None else json.loads(text)
    except Exception as exc:  # tomllib.TOMLDecodeError / json.JSONDecodeError
        raise ConfigError(f"The recipe {path} is not valid {path.suffix.lstrip('.').upper() or 'JSON'}: "
                          f"{' '.join(str(exc).split())}; fix the line it names.") from None


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


def check_fine_tune_keys(section: Any, fine_tune: Callable, where: str = "the recipe's [fine_tune] section") -> dict:
    """Return `section` (the recipe's extra ``fine_tune`` arguments) after checking each key against `fine_tune`'s signature.

    Keys the run sets itself (backbone, sizes, epochs, ...: the [train] settings) and
    unknown keys are a `ConfigError` naming the key and the valid ones.
    """
    import inspect

    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError(f"{where[:1].upper()}{where[1:]} must be a table of fine_tune arguments "
                          f"(key = value), not {type(section).__name__}.")
    params = inspect.signature(fine_tune).parameters
    valid = sorted(k for k in params if k not in _SET_BY_RUN)
    for key in section:
        if key in _SET_BY_RUN:
            fix = (f"put it in the [train] section or give --{key.replace('_', '-')}" if key in DEFAULTS else
                   "give --workdir" if key == "workdir" else "the run passes the competition's table itself")
            raise ConfigError(f"{key!r} in {where} is set by the run ({fix}); "
                              f"valid [fine_tune] keys: {', '.join(valid)}.")
        if key not in params:
            raise ConfigError(f"Unknown key {key!r} in {where}: fine_tune has no such argument; "
                              f"valid keys: {', '.join(valid)}.")
    return dict(section)


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



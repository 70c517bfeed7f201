"""Checking values, recipes and kk.run's arguments against the schema (see `kagglekit.settings`)."""
from __future__ import annotations

import inspect
import json
import math
import numbers
import os
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import ConfigError, KaggleKitError
from .schema import (_BY_SECTION, _LAYOUT, _TRAIN, LAYOUT_READERS, SECTIONS, SET_BY_RUN, SETTINGS, Setting, _aliases,
                     section_settings, suggest)


# ------------------------------------------------------------------ one value
class _Refused(Exception):
    """A value a setting does not take; its text says why (added to the setting's description, or instead of it)."""

    def __init__(self, why: str = "", instead: bool = False) -> None:
        super().__init__(why)
        self.instead = instead  # the text replaces "NAME takes ..." (a registry's own answer: no such backbone)


def _number(value: Any, integer: bool) -> float | int:
    """Return `value` as an int (`integer`) or a finite float; raise `_Refused` for anything else (bools included)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _Refused("")
    if integer:
        if isinstance(value, numbers.Integral):
            return int(value)
        if math.isfinite(float(value)) and float(value).is_integer():
            return int(value)
        raise _Refused("")
    if not math.isfinite(float(value)):
        raise _Refused("")
    return float(value)


def _in_range(s: Setting, v: float) -> None:
    """Raise `_Refused` when `v` is outside the setting's bounds."""
    if s.low is not None and (v < s.low or (s.open_low and v == s.low)):
        raise _Refused("")
    if s.high is not None and (v > s.high or (s.open_high and v == s.high)):
        raise _Refused("")


def _from_text(s: Setting, text: str) -> Any:
    """Return a CLI text as the value it writes (numbers parsed, lists split); raise `_Refused` when it is none."""
    text = text.strip()
    if s.kind in ("int", "float", "fraction") and text not in s.also:
        try:
            return int(text) if s.kind == "int" or text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            raise _Refused("") from None
    if s.kind in ("sizes", "floats"):
        if any(not part.strip() for part in text.split(",")) and "," in text:
            raise _Refused("an empty item between commas: write each value once, e.g. 64,128")
        parts = text.replace(",", " ").split()
        try:
            return [int(p) if s.kind == "sizes" else float(p) for p in parts]
        except ValueError:
            raise _Refused("") from None
    if s.kind == "ledger" and text.lower() in ("none", "false", "off"):
        return False
    return text


def _has_class(value: Any, names: tuple[str, ...]) -> bool:
    """Return whether one of `value`'s classes is named in `names` (a Keras Layer, a Callback, ...)."""
    return any(c.__name__ in names for c in type(value).__mro__)


def _convert(s: Setting, value: Any, python: bool) -> Any:
    """Return `value` normalised for `s`, or raise `_Refused` (`python`: kk.run may pass objects a recipe cannot)."""
    if isinstance(value, str) and value in s.also:
        return value
    if python and s.objects and _has_class(value, s.objects):
        return value
    kind = s.kind
    if kind == "any":
        return value
    if kind == "bool":
        if value is True or value is False or (type(value).__module__ == "numpy" and "bool" in type(value).__name__):
            return bool(value)
        raise _Refused("")
    if kind in ("int", "float"):
        v = _number(value, kind == "int")
        _in_range(s, v)
        return v
    if kind == "fraction":
        v = _number(value, isinstance(value, numbers.Integral) and not isinstance(value, bool))
        if isinstance(v, int):
            if v < 1:
                raise _Refused("")
            return v
        if not 0 < v < 1:
            raise _Refused("")
        return v
    if kind in ("sizes", "floats", "ints", "texts"):
        if kind == "sizes" and isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = [value]
        if isinstance(value, str):
            raise _Refused("a text is not split into a list: write a list")
        if not isinstance(value, (list, tuple)) or not value:
            raise _Refused("")
        if kind == "texts":
            if not all(isinstance(v, str) and v.strip() for v in value):
                raise _Refused("")
            return list(value)
        out = [_number(v, kind in ("sizes", "ints")) for v in value]
        for v in out:
            _in_range(s, v)
        return out
    return _convert_other(s, value, python)


_PATH_TEXTS = ("weights",)  # "str" settings whose text may be a file's path: a pathlib.Path is taken as its text


def _convert_other(s: Setting, value: Any, python: bool) -> Any:
    """Return `value` normalised for the text, path and table kinds of `s`, or raise `_Refused`."""
    kind = s.kind
    if kind == "str":
        if s.text_ok and isinstance(value, numbers.Real) and not isinstance(value, bool):
            value = str(value)
        if s.name in _PATH_TEXTS and isinstance(value, os.PathLike):
            value = os.fspath(value)  # kk.run(weights=Path("resnet50_notop.h5"))
        if not isinstance(value, str) or not value.strip():
            raise _Refused("")
        if s.choices and value not in s.choices:
            raise _Refused(suggest(value, s.choices).lstrip("; "))
        return value
    if kind in ("path", "recipe", "ledger"):
        if kind == "recipe" and isinstance(value, dict):
            return value
        if kind == "ledger" and isinstance(value, bool):
            return value  # False: no ledger; True: the default one
        if isinstance(value, os.PathLike) or (isinstance(value, str) and value.strip()):
            return value
        raise _Refused("")
    if kind == "duration":
        from ..durations import parse_duration

        try:
            parse_duration(value)
        except KaggleKitError:
            raise _Refused("") from None
        return value
    if kind == "table":
        if isinstance(value, dict):
            return dict(value)
        raise _Refused("")
    if kind == "objects":
        if not python:
            raise _Refused("Python objects can be given only through kk.run")
        if isinstance(value, (list, tuple)) and all(_has_class(v, s.objects) for v in value):
            return list(value)
        raise _Refused("")
    raise ValueError(f"setting {s.name!r} has an unknown kind {kind!r}")  # a mistake in SETTINGS itself


@dataclass(frozen=True)
class Origin:
    """Where a value came from, for the message: "recipe" (with its `where` text), "cli" or "api"."""

    kind: str
    where: str = "the recipe"


def _shown(value: Any, origin: Origin) -> str:
    """Return `value` as the user wrote it: TOML/JSON-like in a recipe, as typed on the CLI, repr in Python."""
    if origin.kind == "cli":
        return str(value)
    if origin.kind == "recipe":
        try:
            return json.dumps(value)
        except (TypeError, ValueError):
            return repr(value)
    return repr(value)


def _example_text(s: Setting, origin: Origin) -> str:
    """Return the fix's example: `--epochs 3`, `epochs = 3` or `run(epochs=3)`."""
    ex = s.example
    if origin.kind == "cli":
        if s.kind == "bool":
            return " or ".join(s.flags)
        shown = ",".join(str(v) for v in ex) if isinstance(ex, list) else str(ex)
        return f"{s.flag} {shown}"
    if origin.kind == "recipe":
        return f"{s.name} = {json.dumps(ex) if not isinstance(ex, dict) else '{ ... }'}"
    if s.keyword:
        return f"run({s.name}={ex!r})"
    return f"run(fine_tune={{{s.name!r}: {ex!r}}})"


def check_value(s: Setting, value: Any, origin: Origin = Origin("api")) -> Any:
    """Return `value` normalised for setting `s` (None: not given, returned as is); raise `ConfigError` naming the fix.

    From the CLI (`origin` "cli") the value is the text typed: numbers are parsed, lists split at commas.
    """
    if value is None and origin.kind != "recipe":
        return None
    try:
        if value is None:  # JSON null: leaving the key out is how a recipe says "the default"
            raise _Refused("null is not a value: leave the key out for the default")
        typed = _from_text(s, value) if origin.kind == "cli" and isinstance(value, str) else value
        got = _convert(s, typed, python=origin.kind == "api")
        why = s.check(got) if s.check is not None and not (isinstance(got, str) and got in s.also) else None
        if why:
            raise _Refused(why, instead=True)
        return got
    except _Refused as why:
        reason = (f": {why}" if why.instead else f" ({why})") if str(why) else ""
        takes = "" if why.instead else f": {s.name} takes {s.describe()}"
        if origin.kind == "cli":
            head = f"{s.flag} {_shown(value, origin)}"
        elif origin.kind == "recipe":
            head = f"{origin.where}: [{s.section}] {s.name} = {_shown(value, origin)}"
        else:
            head = (f"run({s.name}={value!r})" if s.keyword or s.section is None
                    else f"run(fine_tune={{{s.name!r}: {value!r}}})")
        raise ConfigError(f"{head} is refused{takes}{reason}; "
                          f"e.g. {_example_text(s, origin)}.") from None


# ------------------------------------------------------------------ fine_tune's own arguments
def fine_tune_parameters() -> Mapping[str, inspect.Parameter]:
    """Return the parameters of `kagglekit.learner.fine_tune` (imports the learner, so Keras)."""
    from ..learner import fine_tune

    return inspect.signature(fine_tune).parameters


# The kind of an argument `SETTINGS` does not declare, read from its annotation (" | None" aside); others are not checked.
_ANNOTATED = {"bool": "bool", "int": "int", "float": "float", "str": "str", "str | os.PathLike": "path",
              "Sequence[str]": "texts", "tuple[int, ...]": "ints"}
_KIND_EXAMPLES = {"bool": True, "int": 1, "float": 0.5, "str": "text", "path": "folder", "texts": ["a", "b"], "ints": [28, 28]}


def _from_annotation(name: str, param: inspect.Parameter, section: str = "fine_tune") -> Setting:
    """Return a `Setting` for an argument `SETTINGS` does not declare (fine_tune's, a layout reader's), typed by its annotation."""
    kind = _ANNOTATED.get(str(param.annotation).strip().removesuffix(" | None"), "any")
    given = param.default is not inspect.Parameter.empty and param.default is not None
    example = param.default if given else _KIND_EXAMPLES.get(kind)
    return Setting(name, kind, "", section=section, keyword=False, example=example)


def check_fine_tune(section: Any, params: Mapping[str, inspect.Parameter] | None = None,
                    where: str = "the recipe's [fine_tune] section", origin: Origin | None = None) -> dict:
    """Return `section` (extra ``fine_tune`` arguments) checked: each key against fine_tune's signature, each value by its type.

    Keys the run sets itself (the [train] settings) and unknown keys are a `ConfigError` naming the key,
    the closest valid one and the valid ones; a value of the wrong type or range is one too.
    """
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError(f"{where[:1].upper()}{where[1:]} must be a table of fine_tune arguments "
                          f"(key = value), not {type(section).__name__}.")
    params = fine_tune_parameters() if params is None else params
    valid = sorted(k for k in params if k not in SET_BY_RUN)
    declared = section_settings("fine_tune")
    origin = origin or Origin("recipe", where)
    out = {}
    for key, value in section.items():
        if key in SET_BY_RUN:
            fix = (f"give run({key}=...)" if origin.kind == "api" and key in _BY_SECTION[_TRAIN] else
                   f"put it in the [train] section or give --{key.replace('_', '-')}" if key in _BY_SECTION[_TRAIN] else
                   "give --workdir" if key == "workdir" else "give --replay RUN_DIR (kk.run: replay=)" if key == "replay"
                   else "the run passes the competition's table itself")
            raise ConfigError(f"{key!r} in {where} is set by the run ({fix}); "
                              f"valid [fine_tune] keys: {', '.join(valid)}.")
        if key not in params:
            hint = _elsewhere(key, "fine_tune") or suggest(key, valid, _aliases(declared.values()))
            raise ConfigError(f"Unknown key {key!r} in {where}: fine_tune has no such argument"
                              f"{_then(hint, 'valid keys: ' + ', '.join(valid))}.")
        setting = declared.get(key) or _from_annotation(key, params[key])
        out[key] = check_value(setting, value, origin)
    return out


def _elsewhere(key: str, section: str | None) -> str:
    """Return "; it belongs in [train]" when `key` is a setting of another section (or a run argument), else ''."""
    norm = str(key).strip().lower().replace("-", "_")
    for s in SETTINGS:
        if norm in (s.name, *s.aliases) and s.section != section:
            if s.section is None:
                return f"; {s.name} is not a recipe setting: give {s.flag or s.name} (kk.run: {s.name}=)"
            return f"; {s.name} belongs in the [{s.section}] section"
    return ""


# ------------------------------------------------------------------ recipes
def _then(hint: str, rest: str) -> str:
    """Return a hint ("; did you mean x?") followed by the rest of a message ("known: ..."), punctuated."""
    return f"{hint} ({rest})" if hint.endswith("?") else f"{hint}; {rest}"


def _section_text(section: str, where: str) -> str:
    """Return "the recipe's [train] section" or "the [train] section of the recipe X" for messages."""
    return f"the recipe's [{section}] section" if where == "the recipe" else f"the [{section}] section of {where}"


def _brief(value: Any) -> str:
    """Return `value` as JSON text cut to 60 characters."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_recipe(data: Any, where: str = "the recipe", params: Mapping[str, inspect.Parameter] | None = None) -> dict:
    """Return a recipe's settings (parsed TOML/JSON, or a dict) checked section by section, key by key, value by value.

    The top level must be a table of the sections [layout], [train] and [fine_tune]; an
    unknown section or key is a `ConfigError` naming the closest valid one. `params`:
    fine_tune's parameters (default: read from `kagglekit.learner.fine_tune`, only when a
    [fine_tune] section is present).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must hold a table of sections ([layout], [train], [fine_tune]) at its top level, "
                          f"not a {type(data).__name__} ({_brief(data)}); e.g. {{\"train\": {{\"epochs\": 3}}}}.")
    out: dict = {}
    for key, body in data.items():
        if key not in SECTIONS:
            moved = _elsewhere(key, "-")
            if moved:
                raise ConfigError(f"{where}: {key} = {_brief(body)} is outside any section{moved}.")
            sections = "the sections are " + ", ".join(f"[{s}]" for s in SECTIONS)
            raise ConfigError(f"{where}: unknown section [{key}]{_then(suggest(key, SECTIONS, form='[{}]'), sections)}.")
        text = _section_text(key, where)
        if not isinstance(body, dict):
            raise ConfigError(f"{text[:1].upper()}{text[1:]} must be a table of settings (key = value), "
                              f"not {_brief(body)}.")
        if key == "fine_tune":
            out[key] = check_fine_tune(body, params, text, Origin("recipe", where))
        else:
            out[key] = _check_section(key, body, where)
    if out.get("layout", {}).get("args") is not None:
        _check_reader_args(out["layout"], where)
    return out


def _check_section(section: str, body: dict, where: str) -> dict:
    """Return the [layout] or [train] section `body` with each key known and each value checked."""
    known = section_settings(section)
    out = {}
    for key, value in body.items():
        if key not in known:
            hint = _elsewhere(key, section) or suggest(key, known, _aliases(known.values()))
            raise ConfigError(f"Unknown key {key!r} in {_section_text(section, where)}{_then(hint, 'known: ' + ', '.join(known))}.")
        out[key] = check_value(known[key], value, Origin("recipe", where))
    return out


def _check_reader_args(layout: dict, where: str) -> None:
    """Raise `ConfigError` when [layout] args name an argument its reader does not take (the closest one named)."""
    reader = layout.get("reader")
    if not reader:
        raise ConfigError(f"{where}: [layout] args need a reader (layout.reader = one of {', '.join(LAYOUT_READERS)}) "
                          "to pass them to.")
    from .. import layout as layouts

    params = inspect.signature(getattr(layouts, reader)).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    for key, value in layout["args"].items():
        if key not in params:
            raise ConfigError(f"{where}: the recipe's layout.args do not fit kagglekit.layout.{reader}: it has no "
                              f"argument {key!r}{_then(suggest(key, params), 'its arguments: ' + ', '.join(params))}.")
        if value is not None:
            check_value(_from_annotation(key, params[key], "layout.args"), value, Origin("recipe", where))


# ------------------------------------------------------------------ kk.run
def check_run_arguments(**arguments: Any) -> dict:
    """Return kk.run's own arguments (workdir, recipe, submit, message, time_budget, ledger, dry_run, model) checked."""
    own = section_settings(None)
    return {name: check_value(own[name], value) if name in own else value for name, value in arguments.items()}


def check_keywords(overrides: Mapping[str, Any], params: Mapping[str, inspect.Parameter] | None = None) -> dict:
    """Return kk.run's keyword settings (layout overrides, training settings, ``fine_tune={...}``) checked.

    An unknown keyword is a `ConfigError` naming the closest valid one (``run(epoch=3)``: did you mean
    epochs?) or where it belongs (``run(dropout=0.1)``: ``fine_tune={'dropout': 0.1}``).
    """
    known = {s.name: s for s in SETTINGS if s.keyword and s.section in (_LAYOUT, _TRAIN)}
    out = {}
    for key, value in overrides.items():
        if key == "fine_tune":
            out[key] = check_fine_tune(value, params, "run(fine_tune=...)", Origin("api")) if value is not None else None
            continue
        if key not in known:
            known_text = f"known: {', '.join(known)} and fine_tune={{...}}"
            raise ConfigError(f"run({key}={_brief(value)}) is not a setting{_then(_keyword_hint(key, value, known), known_text)}.")
        out[key] = check_value(known[key], value, Origin("api"))
    return out


def _keyword_hint(key: str, value: Any, known: Mapping[str, Setting]) -> str:
    """Return where an unknown kk.run keyword belongs, or the closest known one, or ''."""
    norm = str(key).strip().lower().replace("-", "_")
    for s in SETTINGS:
        if norm in (s.name, *s.aliases) and s.name not in known:
            if s.section == "fine_tune":
                return f"; {s.name} is a fine_tune argument: run(fine_tune={{{s.name!r}: {value!r}}})"
            if s.section is None:
                return f"; did you mean {s.name}?"
            return f"; {s.name} is set only in a recipe's [{s.section}] section"
    return suggest(key, known, _aliases(known.values()))

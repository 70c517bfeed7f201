"""The `kagglekit run` flags and the reference table, generated from the schema (see `kagglekit.settings`)."""
from __future__ import annotations

import argparse
import json

from .check import Origin, check_value
from .schema import _BY_SECTION, _LAYOUT, _TRAIN, SECTIONS, SETTINGS, Setting


# ------------------------------------------------------------------ the CLI
_GROUPS = {_LAYOUT: "layout (settles what detection infers; see the plan printed before training)", _TRAIN: "training"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every setting that has CLI flags to `parser` (`kagglekit run`): values are read as text and checked by `from_cli`."""
    groups = {None: parser, **{section: parser.add_argument_group(title) for section, title in _GROUPS.items()}}
    for s in SETTINGS:
        if not s.flags:
            continue
        g = groups[s.section]
        if s.kind == "bool" and len(s.flags) == 2:
            pair = g.add_mutually_exclusive_group()
            pair.add_argument(s.flags[0], dest=s.name, action="store_const", const=True, default=None, help=s.flag_help[0])
            pair.add_argument(s.flags[1], dest=s.name, action="store_const", const=False, help=s.flag_help[1])
        elif s.kind == "bool":
            g.add_argument(*s.flags, dest=s.name, action="store_true", help=s.help)
        else:
            g.add_argument(*s.flags, dest=s.name, metavar=s.metavar, default=None, help=s.help)


def from_cli(args: argparse.Namespace) -> dict:
    """Return {kk.run keyword: value} of every flagged setting in the parsed `args`, each converted and checked.

    None means "not given". A bad value is a `ConfigError` naming the flag, the text and an example.
    """
    return {s.name: check_value(s, getattr(args, s.name, None), Origin("cli")) for s in SETTINGS if s.flags}


# ------------------------------------------------------------------ the reference table
_TITLES = {None: ("The run", "CLI flags and `kk.run(...)` arguments; not set by a recipe."),
           _LAYOUT: ("[layout]", "What layout detection would infer (`kagglekit.layout.detect`'s overrides), or the reader "
                     "to use. CLI flags and `kk.run` keywords win over the recipe."),
           _TRAIN: ("[train]", "Training settings. Empty defaults are planned from the time budget, the hardware and the "
                    "images (`kagglekit.plan`). CLI flags and `kk.run` keywords win over the recipe."),
           "fine_tune": ("[fine_tune]", "Further arguments of `kagglekit.learner.fine_tune`; from Python: "
                         "`kk.run(..., fine_tune={...})`. Any other argument of fine_tune's signature is "
                         "accepted too, checked by its annotation.")}


def _cell(text: str) -> str:
    """Return `text` safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _default_text(s: Setting) -> str:
    """Return the default as the docs show it."""
    if s.default_text:
        return s.default_text
    if s.default is None:
        return {_TRAIN: "planned", _LAYOUT: "inferred" if s.keyword else "-"}.get(s.section, "-")
    return f"`{json.dumps(s.default)}`"


def markdown() -> str:
    """Return the settings reference (docs/settings.md): one table per recipe section, generated from `SETTINGS`."""
    lines = ["# Settings reference", "",
             "Generated from the schema in `kagglekit/settings/schema.py` by `python -m kagglekit.settings > docs/settings.md`; "
             "`tests/test_settings.py` fails when this file and the schema differ, so edit the schema, not this file.",
             "", "Every value is checked before any work, the same way from the CLI, a TOML/JSON recipe and "
             "`kk.run(...)`: its type (booleans are `true`/`false` only; a list is never read from a text), its range "
             "and its choices. An unknown section, key or keyword is refused with the closest valid name. A refusal is "
             "one line naming the setting, the value and an example of a valid one (exit code 2 from the CLI).", ""]
    for section in (None, *SECTIONS):
        title, intro = _TITLES[section]
        lines += [f"## {title}", "", intro, "", "| setting | CLI | takes | default | what it does |",
                  "|---|---|---|---|---|"]
        for s in _BY_SECTION.get(section, {}).values():
            flags = " / ".join(f"`{f}`" for f in s.flags) or "-"
            name = s.name if s.keyword or section is not None else s.name
            lines.append(f"| `{name}` | {flags} | {_cell(s.describe())} | {_default_text(s)} | {_cell(s.help)} |")
        lines.append("")
    lines += ["## Adding a setting", "", "Add one `Setting(...)` entry to `SETTINGS` in `kagglekit/settings/schema.py` (name, "
              "kind, help, default, section, flags, range or choices, an example), then regenerate this file. The CLI "
              "flag, the recipe key, the `kk.run` keyword and their checks follow from it.", ""]
    return "\n".join(lines)

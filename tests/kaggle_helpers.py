"""Shared helpers for the Kaggle tests: an emulator with a few competitions, client environments."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

from kagglekit.testing.competitions import build_competition


def evil_zip(path: Path, entry: str = "../evil.txt", symlink: bool = False) -> Path:
    """Return `path`, a zip holding one harmless file and one unsafe entry."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ok.txt", "fine\n")
        info = zipfile.ZipInfo(entry)
        if symlink:
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, "/etc/passwd")
        else:
            zf.writestr(info, "escaped\n")
    return path


def truncated_zip(path: Path) -> Path:
    """Return `path`, a zip cut short (its central directory is missing)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data.csv", "id,label\n" + "".join(f"{i},{i % 10}\n" for i in range(2000)))
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return path


def build_emulated_competitions(root: Path) -> dict[str, Path]:
    """Return {slug: folder}: digits (big enough to cut mid-file), dogs-vs-cats (zipped), broken archives."""
    comps = {
        "digits": build_competition("digits", root / "digits", n_train=200, n_test=40),
        "dogs-vs-cats": build_competition("dogs-vs-cats", root / "dogs-vs-cats", n_train=30, n_test=10, zipped=True),
    }
    broken = root / "broken"
    broken.mkdir()
    truncated_zip(broken / "broken.zip")
    evil_zip(broken / "evil.zip")
    (broken / "sample_submission.csv").write_text("id,label\n1,0\n")
    comps["broken"] = broken
    return comps

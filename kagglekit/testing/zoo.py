"""A zoo of small competitions laid out exactly as named real Kaggle competitions ship them.

Each competition is built offline from real images (scikit-learn's digits over crops of
its sample photos), in the real file and folder names, CSV headers, id conventions,
label encodings and image formats, with the held-back answers returned for scoring by
`kagglekit.testing.scoring.score`::

    from kagglekit.testing import zoo, scoring
    comp = zoo.build("aerial-cactus-identification", tmp / "cactus", n_train=400, n_test=100)
    scoring.score(comp.name, my_submission_df, comp.answers)

Sizes are tiny by default (tests) and scale to a few thousand images. Builds are
deterministic for a seed. The builders live in `zoo_folders` and `zoo_tables`; each
documents the real format facts it relies on and where they were found.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from . import zoo_folders, zoo_tables
from .zoo_base import ZooCompetition

__all__ = ["BUILDERS", "COMPETITIONS", "ZooCompetition", "build"]

BUILDERS: dict[str, Callable[..., ZooCompetition]] = {
    "dogs-vs-cats-redux-kernels-edition": zoo_folders.build_dogs_vs_cats_redux,
    "planet-understanding-the-amazon-from-space": zoo_folders.build_planet,
    "imaterialist-challenge-fashion-2018": zoo_folders.build_imaterialist,
    "plant-seedlings-classification": zoo_folders.build_plant_seedlings,
    "aerial-cactus-identification": zoo_folders.build_aerial_cactus,
    "histopathologic-cancer-detection": zoo_folders.build_histopathologic,
    "aptos2019-blindness-detection": zoo_tables.build_aptos,
    "humpback-whale-identification": zoo_tables.build_humpback_whale,
    "cassava-leaf-disease-classification": zoo_tables.build_cassava,
    "state-farm-distracted-driver-detection": zoo_tables.build_state_farm,
    "plant-pathology-2020-fgvc7": zoo_tables.build_plant_pathology,
    "digit-recognizer": zoo_tables.build_digit_recognizer,
}
COMPETITIONS: tuple[str, ...] = tuple(BUILDERS)


def build(name: str, root: str | Path, n_train: int | None = None, n_test: int | None = None, seed: int = 0,
          image_size: int | tuple[int, int] | None = None, **options) -> ZooCompetition:
    """Return the `ZooCompetition` built in `root` for the Kaggle competition `name` (its URL slug).

    ``n_train``/``n_test`` default to a tiny size (tens of images); ``image_size`` (an int:
    longest side, or (w, h)) defaults to the competition's own where it is small (cactus
    32×32, histopathology 96×96, Planet 256×256, digits 28×28) and to a shrunken size of
    the real aspect otherwise. Per-competition options: Planet ``archives=True`` (.tar.7z,
    needs py7zr), iMaterialist ``test_json=False`` (test/ folder, no test.json) and
    ``n_valid``, Cassava ``rerun=True`` (also the hidden-test tree, in
    ``extra["rerun"]``), State Farm ``n_drivers``.
    """
    if name not in BUILDERS:
        raise ValueError(f"Unknown competition {name!r}; the zoo has {', '.join(COMPETITIONS)}.")
    root = Path(root)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty; build each competition in a new folder")
    kwargs = {k: v for k, v in (("n_train", n_train), ("n_test", n_test)) if v is not None}
    return BUILDERS[name](root, seed=seed, image_size=image_size, **kwargs, **options)

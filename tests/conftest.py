"""Shared fixtures: real images (scikit-learn's digits) in the layouts Kaggle ships."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kagglekit.testing.competitions import build_competition  # noqa: E402


@pytest.fixture(scope="session")
def digits_competition(tmp_path_factory) -> Path:
    """The demo's digits competition: train/*.png, train.csv, test/*.png, sample_submission.csv."""
    return build_competition("digits", tmp_path_factory.mktemp("comp") / "digits", n_train=400, n_test=100)


@pytest.fixture(scope="session")
def dogs_vs_cats_dir(tmp_path_factory) -> Path:
    """A dogs-vs-cats-shaped competition, unzipped: train/cat.N.jpg, test/N.jpg."""
    return build_competition("dogs-vs-cats", tmp_path_factory.mktemp("comp") / "dogs-vs-cats", n_train=120, n_test=40, zipped=False)


@pytest.fixture(scope="session")
def imaterialist_dir(tmp_path_factory) -> Path:
    """An iMaterialist-shaped competition, unzipped: train.json, train/<imageId>.jpg, ..."""
    return build_competition("imaterialist-fashion", tmp_path_factory.mktemp("comp") / "imat", n_train=120, n_valid=30, n_test=30, zipped=False)

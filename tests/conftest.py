"""Shared fixtures: real images (scikit-learn's digits) in the layouts Kaggle ships."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kagglekit.testing.competitions import build_competition


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


@pytest.fixture
def jax_process_env():
    """Return env(index, **extra): the environment of process `index` of two JAX processes on this machine that
    join each other (CPU collectives, on a free local port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parents[1]

    def env(index: int, **extra: str) -> dict:
        return {**os.environ, "PYTHONPATH": str(root), "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
                "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"localhost:{port}",
                "KERAS_DISTRIBUTION_NUM_PROCESSES": "2", "KERAS_DISTRIBUTION_PROCESS_ID": str(index), **extra}

    return env

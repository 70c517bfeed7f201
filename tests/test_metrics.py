"""Metrics and tuned post-processing, on real digit images and real (scikit-learn) predictors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, fbeta_score
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.multiclass import OneVsRestClassifier
from sklearn.neighbors import KNeighborsClassifier

from kagglekit import metrics as M
from kagglekit.errors import ConfigError
from kagglekit.testing.competitions import DOGS_VS_CATS_DIGITS, digits


@pytest.fixture(scope="module")
def pixels():
    images, labels = digits()
    return images.reshape(len(images), -1) / 255.0, labels


@pytest.fixture(scope="module")
def cats_dogs(pixels):
    """Binary dogs-vs-cats digits (3, 5 cats; 8, 9 dogs), predicted by an over-confident 3-NN: (y_valid, p_valid, y_test, p_test)."""
    x, labels = pixels
    keep = np.isin(labels, DOGS_VS_CATS_DIGITS["cat"] + DOGS_VS_CATS_DIGITS["dog"])
    x, y = x[keep], np.isin(labels[keep], DOGS_VS_CATS_DIGITS["dog"]).astype(int)
    knn = KNeighborsClassifier(3).fit(x[:100], y[:100])
    half = 100 + (len(x) - 100) // 2
    return y[100:half], knn.predict_proba(x[100:half])[:, 1], y[half:], knn.predict_proba(x[half:])[:, 1]


@pytest.fixture(scope="module")
def pairs(pixels):
    """Multi-label: two real digits side by side (the second blank 30% of the time); labels = digits present.

    Each class is present in about 17% of images (skewed), predicted by one-vs-rest logistic regression.
    Returns (y_valid, p_valid, y_test, p_test).
    """
    x, labels = pixels
    rng = np.random.default_rng(0)
    n = 1500
    a, b = rng.integers(0, len(x), n), rng.integers(0, len(x), n)
    blank = rng.random(n) < 0.3
    feats = np.concatenate([x[a], np.where(blank[:, None], 0.0, x[b])], axis=1)
    y = np.zeros((n, 10))
    y[np.arange(n), labels[a]] = 1
    y[np.flatnonzero(~blank), labels[b][~blank]] = 1
    model = OneVsRestClassifier(LogisticRegression(C=0.05, max_iter=500)).fit(feats[:600], y[:600])
    return y[600:1050], model.predict_proba(feats[600:1050]), y[1050:], model.predict_proba(feats[1050:])


def test_accuracy_and_log_loss_match_scikit_learn(pixels):
    x, labels = pixels
    model = LogisticRegression(max_iter=300).fit(x[:500], labels[:500])
    p, y = model.predict_proba(x[500:900]), labels[500:900]
    assert M.accuracy(y, p) == pytest.approx(accuracy_score(y, p.argmax(1)))
    assert M.accuracy(np.eye(10)[y], p) == pytest.approx(accuracy_score(y, p.argmax(1)))
    assert M.log_loss(y, p) == pytest.approx(sk_log_loss(y, p, labels=range(10)), rel=1e-9)
    binary_y = (y >= 5).astype(int)
    binary_p = p[:, 5:].sum(axis=1)
    assert M.log_loss(binary_y, binary_p) == pytest.approx(sk_log_loss(binary_y, binary_p), rel=1e-9)
    assert M.accuracy(binary_y, binary_p) == pytest.approx(accuracy_score(binary_y, binary_p >= 0.5))
    clipped = np.clip(binary_p, 0.05, 0.95)
    assert M.log_loss(binary_y, binary_p, clip=0.05) == pytest.approx(sk_log_loss(binary_y, clipped), rel=1e-9)


def test_choose_clip_improves_log_loss_of_an_over_confident_predictor(cats_dogs):
    y_valid, p_valid, y_test, p_test = cats_dogs
    assert set(np.unique(p_valid)) <= {0.0, 1 / 3, 2 / 3, 1.0}  # over-confident: hard 0s and 1s
    clip = M.choose_clip(y_valid, p_valid)
    assert 0 < clip < 0.5
    assert M.log_loss(y_valid, p_valid, clip=clip) < M.log_loss(y_valid, p_valid)
    # chosen on validation, it helps on unseen images too
    assert M.log_loss(y_test, p_test, clip=clip) < 0.6 * M.log_loss(y_test, p_test)
    settings = M.tune(y_valid, p_valid, "logloss")
    assert settings["clip"] == clip and settings["valid_score"] < settings["valid_score_raw"]
    clipped = M.postprocess(p_test, settings)
    assert clipped.min() == pytest.approx(clip) and clipped.max() == pytest.approx(1 - clip)
    frame = pd.DataFrame({"id": ["a", "b"], "cat": [0.0, 1.0], "dog": [1.0, 0.0]})
    out = M.postprocess(frame, {"clip": 0.01})
    assert out["dog"].tolist() == [0.99, 0.01] and out["id"].tolist() == ["a", "b"]
    with pytest.raises(ConfigError, match="clip must be"):
        M.log_loss(y_valid, p_valid, clip=0.7)


@pytest.mark.parametrize("threshold", [0.2, 0.5, 0.8])
def test_fbeta_equals_scikit_learn_samples_average(pairs, threshold):
    y, p, _, _ = pairs
    decisions = (p >= threshold).astype(int)
    for beta in (1.0, 2.0):
        expected = fbeta_score(y, decisions, beta=beta, average="samples", zero_division=0)
        assert M.fbeta(y, p, beta=beta, threshold=threshold) == pytest.approx(expected, abs=1e-12)
    # per-class thresholds and rows with no true label (zero_division=0 either way)
    thr = np.linspace(0.1, 0.9, 10)
    y_empty = y.copy()
    y_empty[:20] = 0
    expected = fbeta_score(y_empty, (p >= thr).astype(int), beta=2, average="samples", zero_division=0)
    assert M.f2(y_empty, p, threshold=thr) == pytest.approx(expected, abs=1e-12)
    # the fallback decisions score as scikit-learn scores them
    fb = M.apply_thresholds(p, 0.9, fallback=True)
    assert M.fbeta(y, p, threshold=0.9, fallback=True) == pytest.approx(fbeta_score(y, fb, beta=2, average="samples", zero_division=0))


def test_thresholds_beat_one_half_on_a_skewed_case(pairs):
    y_valid, p_valid, y_test, p_test = pairs
    assert y_valid.mean() < 0.25  # skewed: most labels absent
    at_half = M.f2(y_valid, p_valid, threshold=0.5)
    global_thr, global_score = M.search_threshold(y_valid, p_valid)
    assert global_thr < 0.5 and global_score > at_half + 0.1
    per_class, per_class_score = M.search_thresholds(y_valid, p_valid)
    assert per_class.shape == (10,)
    assert per_class_score >= global_score
    # the incremental search scores exactly what the metric says
    assert M.f2(y_valid, p_valid, threshold=per_class, fallback=True) == pytest.approx(per_class_score, abs=1e-12)
    # chosen on validation, it beats 0.5 on unseen images
    assert M.f2(y_test, p_test, threshold=per_class, fallback=True) > M.f2(y_test, p_test, threshold=0.5) + 0.1
    settings = M.tune(y_valid, p_valid, "f2", multilabel=True)
    assert settings["threshold"] == pytest.approx(list(per_class))
    assert settings["fallback"] is True and settings["multilabel"] is True
    global_only = M.tune(y_valid, p_valid, "f2", per_class=False)
    assert global_only["threshold"] == global_thr


@pytest.mark.parametrize("fallback", [True, False])
def test_threshold_searches_equal_brute_force(pairs, fallback):
    y, p, _, _ = pairs
    p = np.round(p, 2)  # probabilities that land exactly on candidate thresholds
    grid = M.DEFAULT_THRESHOLDS
    brute = [M.f2(y, p, threshold=float(g), fallback=fallback) for g in grid]
    thr, best = M.search_threshold(y, p, grid=grid, fallback=fallback)
    assert best == pytest.approx(max(brute), abs=1e-12) and thr == grid[int(np.argmax(brute))]
    per_class, score = M.search_thresholds(y, p, grid=grid, fallback=fallback, passes=1)
    assert score == pytest.approx(M.f2(y, p, threshold=per_class, fallback=fallback), abs=1e-12)
    # no single class can be moved to a better threshold after the sweeps converge
    per_class, score = M.search_thresholds(y, p, grid=grid, fallback=fallback, passes=10)
    for j in range(p.shape[1]):
        for g in grid[::7]:
            moved = per_class.copy()
            moved[j] = g
            assert M.f2(y, p, threshold=moved, fallback=fallback) <= score + 1e-12


def test_fallback_gives_every_row_a_label(pairs):
    _, _, y, p = pairs
    strict = M.apply_thresholds(p, 0.99, fallback=False)
    assert (strict.sum(axis=1) == 0).any()
    decided = M.decide(p, {"threshold": 0.99, "fallback": True, "multilabel": True})
    assert (decided.sum(axis=1) >= 1).all()
    empty = strict.sum(axis=1) == 0
    assert (decided[empty].argmax(axis=1) == p[empty].argmax(axis=1)).all()
    assert (decided[~empty] == strict[~empty]).all()
    single = M.decide(p)  # single-label: exactly the most probable class
    assert (single.sum(axis=1) == 1).all() and (single.argmax(1) == p.argmax(1)).all()


def test_registry_and_bad_inputs(pairs):
    y, p, _, _ = pairs
    assert {"accuracy", "logloss", "f1", "f2"} <= set(M.METRICS)
    assert M.get_metric("F2").beta == 2.0 and M.get_metric("log_loss").name == "logloss"
    assert M.get_metric("logloss").greater_is_better is False
    assert M.score(y, p, "f2", {"threshold": 0.3}) == pytest.approx(M.f2(y, p, threshold=0.3, fallback=True))
    with pytest.raises(ConfigError, match="Unknown metric 'dice'.*register_metric"):  # was 'auc', now a metric
        M.get_metric("dice")
    from sklearn.metrics import hamming_loss

    try:
        M.register_metric("hamming", lambda y, p: hamming_loss(y, p >= 0.5), greater_is_better=False)
        assert M.score(y, p, "hamming") == pytest.approx(hamming_loss(y, p >= 0.5))
    finally:
        M.METRICS.pop("hamming", None)
    with pytest.raises(ConfigError, match="needs beta"):
        M.register_metric("f3", M.fbeta, tunes="threshold")
    with pytest.raises(ConfigError, match="logits"):
        M.f2(y, p * 3)
    with pytest.raises(ConfigError, match="align them by id"):
        M.f2(y[:10], p)
    with pytest.raises(ConfigError, match="one per class"):
        M.apply_thresholds(p, [0.5, 0.5])

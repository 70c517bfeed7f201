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


# ------------------------------------------------------- AUC, QWK, micro-F, MAP@k
def test_auc_matches_scikit_learn_binary_and_column_wise(pixels, caplog):
    from sklearn.metrics import roc_auc_score

    x, labels = pixels
    model = LogisticRegression(C=0.01, max_iter=300).fit(x[:300], labels[:300])
    p, y = model.predict_proba(x[300:700]), labels[300:700]
    onehot = np.eye(10)[y]
    expected = np.mean([roc_auc_score(onehot[:, j], p[:, j]) for j in range(10)])
    assert M.auc(y, p) == pytest.approx(expected) and M.auc(onehot, p) == pytest.approx(expected)
    binary = (y >= 5).astype(int)
    pos = p[:, 5:].sum(axis=1)
    assert M.auc(binary, pos) == pytest.approx(roc_auc_score(binary, pos))
    assert M.auc(binary, np.stack([1 - pos, pos], axis=1)) == pytest.approx(roc_auc_score(binary, pos))
    assert M.get_metric("roc_auc") is M.get_metric("mean_column_roc_auc") is M.METRICS["auc"]
    settings = M.tune(binary, pos, "auc")
    assert set(settings) == {"metric", "valid_score", "valid_score_raw"}  # nothing to tune: ranks only
    with caplog.at_level("WARNING", logger="kagglekit"):
        assert M.auc(onehot[:, :3][y < 3], p[y < 3][:, :3] / 1.0) > 0.5
        M.auc(np.eye(4)[np.minimum(y, 2)], np.hstack([p[:, :3], p[:, 3:].sum(1, keepdims=True)]))
    assert any("single class" in r.getMessage() for r in caplog.records)
    with pytest.raises(ConfigError, match="both classes"):
        M.auc(np.ones(5), np.linspace(0, 1, 5))


def test_quadratic_kappa_and_tuned_cut_points(pixels):
    from sklearn.metrics import cohen_kappa_score

    from kagglekit import postprocess as pp

    rng = np.random.default_rng(0)
    for _ in range(20):  # the fast kappa of the search is scikit-learn's, labels missing from either side included
        a, b = rng.integers(0, 5, 50), rng.integers(0, 5, 50)
        a[a == 3] = 4
        assert pp.quadratic_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b, weights="quadratic"))
    # an ordinal predictor that favours the common grades (as a model trained on imbalanced grades does)
    n, k = 600, 5
    y = rng.choice(k, n, p=[0.49, 0.1, 0.27, 0.05, 0.09])
    z = y + rng.normal(0, 0.8, n)
    logits = -((np.arange(k)[None, :] - z[:, None]) ** 2) / 0.72 + 1.5 * np.log([0.49, 0.1, 0.27, 0.05, 0.09])
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert M.qwk(y, p) == pytest.approx(cohen_kappa_score(y, p.argmax(1), weights="quadratic"))
    valid, test = slice(0, 300), slice(300, None)
    settings = M.tune(y[valid], p[valid], "quadratic_kappa")
    cuts = settings["cuts"]
    assert len(cuts) == 4 and cuts == sorted(cuts) and settings["valid_score"] > settings["valid_score_raw"]
    graded = np.searchsorted(cuts, p[test] @ np.arange(k), side="right")
    assert M.qwk(y[test], p[test], cuts=cuts) == pytest.approx(cohen_kappa_score(y[test], graded, weights="quadratic"))
    assert M.qwk(y[test], p[test], cuts=cuts) > M.qwk(y[test], p[test])  # chosen on validation, better on unseen grades
    assert (M.decide(p[test], settings).argmax(1) == graded).all()
    with pytest.raises(ConfigError, match="4 increasing cut-points"):
        M.qwk(y, p, cuts=[2.5, 1.5, 0.5, 3.5])


def test_micro_fbeta_single_label_is_accuracy_and_label_sets_tune_exactly(pairs, pixels):
    from sklearn.metrics import f1_score, fbeta_score

    from kagglekit import postprocess as pp

    x, labels = pixels
    model = LogisticRegression(max_iter=300).fit(x[:300], labels[:300])
    p, y = model.predict_proba(x[300:700]), labels[300:700]
    assert M.f1_micro(y, p) == pytest.approx(accuracy_score(y, p.argmax(1))) == pytest.approx(f1_score(y, p.argmax(1), average="micro"))
    assert set(M.tune(y, p, "micro_f1")) == {"metric", "valid_score", "valid_score_raw"}
    y_valid, p_valid, y_test, p_test = pairs
    decisions = M.apply_thresholds(p_valid, 0.3, fallback=True)
    assert M.f2_micro(y_valid, p_valid, threshold=0.3) == pytest.approx(fbeta_score(y_valid, decisions, beta=2, average="micro"))
    grid = M.DEFAULT_THRESHOLDS
    brute = [M.f1_micro(y_valid, p_valid, threshold=float(g)) for g in grid]
    thr, best = pp.search_threshold_micro(y_valid, p_valid, 1.0, grid)
    assert best == pytest.approx(max(brute)) and thr == grid[int(np.argmax(brute))]
    settings = M.tune(y_valid, p_valid, "micro_f1_labels", multilabel=True)
    assert len(settings["threshold"]) == 10
    assert settings["valid_score"] == pytest.approx(M.f1_micro(y_valid, p_valid, threshold=settings["threshold"]))
    assert settings["valid_score"] >= max(brute) - 1e-12
    assert M.f1_micro(y_test, p_test, threshold=settings["threshold"]) > M.f1_micro(y_test, p_test, threshold=0.5)


def _map5_by_hand(y, p, new_index=None, t=None):
    total = 0.0
    for truth, row in zip(y, p):
        scores = list(row) + ([0.0] if new_index == len(row) else [])
        if new_index is not None and t:
            scores[new_index] = max(scores[new_index], t)
        order = sorted(range(len(scores)), key=lambda j: (-scores[j], j))[:5]
        total += 1.0 / (order.index(truth) + 1) if truth in order else 0.0
    return total / len(y)


def test_map_at_5_and_the_new_class_threshold():
    from kagglekit import postprocess as pp

    rng = np.random.default_rng(1)
    n, k = 400, 30
    y = rng.integers(1, k, n)
    y[rng.random(n) < 0.35] = 0  # class 0 is new_whale
    logits = 2.5 * np.eye(k)[y] + rng.normal(0, 1, (n, k))
    logits[:, 0] -= 2.0
    p = np.exp(logits)
    p /= p.sum(1, keepdims=True)
    assert M.map_at_k(y, p) == pytest.approx(_map5_by_hand(y, p))
    assert M.map_at_k(y, p, new_index=0, new_threshold=0.2) == pytest.approx(_map5_by_hand(y, p, 0, 0.2))
    grid = np.round(np.arange(0, 1, 0.02), 2)
    brute = [M.map_at_k(y[:200], p[:200], new_index=0, new_threshold=float(t)) for t in grid]
    t, best = pp.search_new_threshold(y[:200], p[:200], 0, grid=grid)
    assert best == pytest.approx(max(brute)) and t == grid[int(np.argmax(brute))]
    classes = ["new_whale"] + [f"w_{j:02d}" for j in range(1, k)]
    settings = M.tune(y[:200], p[:200], "MAP@5", classes=classes)
    assert settings["new_class"] == "new_whale" and settings["new_index"] == 0 and settings["new_threshold"] > 0
    assert M.score(y[200:], p[200:], "map@5", settings) > M.map_at_k(y[200:], p[200:]) + 0.05
    guesses = M.rank(p[:3], settings, classes)
    assert all(len(g) == 5 for g in guesses)
    # a new class the model does not output is guessed with the threshold alone
    known = p[:, 1:] / p[:, 1:].sum(1, keepdims=True)
    y_known = np.where(y == 0, k - 1, y - 1)  # index k - 1: the appended new class
    tuned = M.tune(y_known[:200], known[:200], "map@5", classes=classes[1:], new_class="new_whale")
    assert tuned["new_index"] == k - 1 and tuned["new_threshold"] > 0
    assert M.map_at_k(y_known[200:], known[200:], new_index=k - 1, new_threshold=tuned["new_threshold"]) == pytest.approx(
        _map5_by_hand(y_known[200:], known[200:], k - 1, tuned["new_threshold"]))
    assert "new_whale" in {g for row in M.rank(known, tuned, classes[1:]) for g in row}
    assert M.get_metric("map_at_3").k == 3 and M.get_metric("map@5") is M.METRICS["map@5"]

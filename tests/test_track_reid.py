"""The ReID at a tiny budget: build, cache, metrics.json, load as an embedder; retrieval AP by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from labkit.artifacts import MODEL_METRICS, finished_model
from labkit.errors import DataError
from labkit.track.reid import CropSet, average_precision, build_reid, load_reid, retrieval_scores

TINY = Path(__file__).resolve().parents[1] / "configs" / "track_reid_tiny.yaml"


def test_average_precision_by_hand():
    # relevant at ranks 1 and 3: (1/1 + 2/3) / 2
    assert average_precision(np.array([1, 0, 1, 0])) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(np.array([0, 0])) == 0.0


def test_average_precision_agrees_with_scikit_learn():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(1)
    relevant = rng.random(30) < 0.3
    scores = -np.arange(30.0)  # already in rank order
    assert average_precision(relevant) == pytest.approx(average_precision_score(relevant, scores))


def test_retrieval_excludes_near_duplicates_of_the_query():
    # identity 0 at frames 1, 2 (a near duplicate) and 20; identity 1 at frame 1
    crops = CropSet(np.zeros((4, 2, 2, 3), np.uint8), np.array([0, 0, 0, 1]), np.array(["s"] * 4), np.array([1, 2, 20, 1]))
    emb = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])
    # query 0 (frame 1): frame 2 is junk (|2-1| <= 5); the ranking is then id 1 (cos 0.8) before frame 20 (cos 0)
    s = retrieval_scores(emb, crops, query_every=10, exclude_frames=5)
    assert s["queries"] == 1 and s["rank1"] == 0.0 and s["mAP"] == pytest.approx(0.5)


@pytest.mark.slow
def test_tiny_build_is_cached_and_loads(tmp_path: Path):
    from labkit.data.synth import ensure_dataset

    root = ensure_dataset(size="small", seed=0)
    weights = build_reid(TINY, root, tmp_path)
    assert finished_model(weights)
    metrics = json.loads((weights.parent / MODEL_METRICS).read_text())
    for key in ("rank1", "mAP", "histogram_rank1", "histogram_mAP", "ms_per_crop"):
        assert metrics["metrics"][key] is not None
    assert metrics["epochs"] == 1 and metrics["model"] == "track-reid"
    mtime = weights.stat().st_mtime_ns
    assert build_reid(TINY, root, tmp_path) == weights and weights.stat().st_mtime_ns == mtime  # cached
    embedder = load_reid(weights)
    out = embedder(np.zeros((40, 60, 3), np.uint8), np.array([[0.0, 0.0, 10.0, 20.0], [5.0, 5.0, 30.0, 30.0]]))
    assert out.shape == (2, 16)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_load_reid_refuses_a_missing_or_foreign_file(tmp_path: Path):
    with pytest.raises(DataError, match="not found"):
        load_reid(tmp_path / "none.pt")
    import torch

    torch.save({"something": 1}, tmp_path / "x.pt")
    with pytest.raises(DataError, match="not a labkit ReID checkpoint"):
        load_reid(tmp_path / "x.pt")

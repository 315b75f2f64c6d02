"""The ReID's parts without the registry build: config checks, crops of a hand-made dataset,
network shape and normalisation, seeded training, save/load, and retrieval scored by hand."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from labkit.errors import DataError
from labkit.track.reid import (CropSet, ReidConfig, ReidEmbedder, _network, _tensor, evaluate_cached, evaluate_reid,
                               flip_half, load_reid, retrieval_scores, sequence_crops, train_cached, train_reid)

torch = pytest.importorskip("torch")

TINY = ReidConfig(width=4, embedding_dim=8, crop_height=8, crop_width=8, max_crops_per_identity=3, query_every=1,
                  exclude_frames=0, epochs=2, batch=4, lr=0.03)
RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)


def _sequence(root: Path, name: str, tracks: dict[int, tuple[tuple[int, int, int], tuple[int, int], dict[int, float]]]):
    """A 4-frame 40x40 sequence: ``tracks[tid] = (rgb, (x, y), {frame: visibility})``, 8x8 boxes."""
    seq = root / name
    (seq / "img1").mkdir(parents=True)
    (seq / "gt").mkdir()
    (seq / "seqinfo.ini").write_text(f"[Sequence]\nname={name}\nimDir=img1\nframeRate=10\nseqLength=4\n"
                                     "imWidth=40\nimHeight=40\nimExt=.png\n")
    rows = []
    for f in range(1, 5):
        image = np.full((40, 40, 3), 128, np.uint8)
        for tid, (rgb, (x, y), vis) in tracks.items():
            if f in vis:
                image[y:y + 8, x:x + 8] = rgb
                rows.append(f"{f},{tid},{x},{y},8,8,1,1,{vis[f]}")
        cv2.imwrite(str(seq / "img1" / f"{f:06d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (seq / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """s1: track 1 red in all 4 frames, track 2 blue (visible enough in frames 1-2 only), track 3
    in one frame only (too short); s2: track 1 green in frames 1-2. Same layout for train and val."""
    root = tmp_path_factory.mktemp("reid_data")
    for split in ("train", "val"):
        _sequence(root / "sequences" / split, "s1", {1: (RED, (2, 2), {1: 1, 2: 1, 3: 1, 4: 1}),
                                                     2: (BLUE, (20, 20), {1: 1, 2: 0.6, 3: 0.5, 4: 0.59}),
                                                     3: (GREEN, (2, 25), {2: 1})})
        _sequence(root / "sequences" / split, "s2", {1: (GREEN, (10, 10), {1: 1, 2: 1})})
    return root


# ----------------------------------------------------------------------------------------- config
@pytest.mark.parametrize("name", ["epochs", "batch", "embedding_dim", "width", "crop_height", "crop_width",
                                  "max_crops_per_identity", "query_every"])
def test_integer_knobs_are_at_least_one(name):
    assert getattr(ReidConfig(**{name: 1}), name) == 1
    for bad in (0, 2.0, True, "4"):
        with pytest.raises(DataError, match=re.escape(f"'{name}' must be an integer >= 1, got {bad!r}")):
            ReidConfig(**{name: bad})


def test_float_knob_ranges():
    for ok in (1e-9, 0.999):
        assert ReidConfig(lr=ok).lr == ok
    for bad in (0, 1, -0.1):
        with pytest.raises(DataError, match=re.escape(f"'lr' must be in (0, 1), got {bad!r}")):
            ReidConfig(lr=bad)
    for ok in (0, 1, 0.5):
        assert ReidConfig(min_visibility=ok).min_visibility == ok
    for bad in (-0.01, 1.01):
        with pytest.raises(DataError, match=re.escape(f"'min_visibility' must be in [0, 1], got {bad!r}")):
            ReidConfig(min_visibility=bad)
    assert ReidConfig(dataset_size="small").dataset_size == "small"
    with pytest.raises(DataError, match=re.escape("'dataset_size' must be 'default' or 'small', got 'tiny'")):
        ReidConfig(dataset_size="tiny")


# ----------------------------------------------------------------------------------------- crops
def test_val_crops_by_hand(data_root: Path):
    c = sequence_crops(data_root, "val", TINY)
    # s1 track 1: frames 1-4, 3 of them evenly spread: linspace(0, 3, 3) = 0, 1.5, 3 -> rounded 0, 2, 3
    # -> frames 1, 3, 4; track 2: frames 1, 2 (visibility 0.6 >= 0.6; 0.5 and 0.59 are not);
    # track 3: one frame, left out; s2 track 1: a new identity (label 2), frames 1, 2.
    # Order: sequence, then frame, then track.
    np.testing.assert_array_equal(c.labels, [0, 1, 1, 0, 0, 2, 2])
    np.testing.assert_array_equal(c.frames, [1, 1, 2, 3, 4, 1, 2])
    np.testing.assert_array_equal(c.sequences, ["s1"] * 5 + ["s2"] * 2)
    assert c.images.shape == (7, 8, 8, 3) and c.images.dtype == np.uint8
    colours = {0: RED, 1: BLUE, 2: GREEN}
    for image, label in zip(c.images, c.labels):
        np.testing.assert_array_equal(image.reshape(-1, 3), np.tile(colours[label], (64, 1)))


def test_train_crops_are_a_seeded_shuffle_of_the_same_crops(data_root: Path):
    val = sequence_crops(data_root, "val", TINY)
    a, b = sequence_crops(data_root, "train", TINY), sequence_crops(data_root, "train", TINY)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.frames, val.frames) or not np.array_equal(a.labels, val.labels)  # shuffled
    key = lambda c: sorted(zip(c.sequences.tolist(), c.frames.tolist(), c.labels.tolist()))  # noqa: E731
    assert key(a) == key(val)
    colours = {0: RED, 1: BLUE, 2: GREEN}
    for image, label in zip(a.images, a.labels):  # images travel with their labels
        assert tuple(image[4, 4]) == colours[label]


def test_crop_limits_and_visibility(data_root: Path):
    # 4 crops allowed: red keeps all 4 frames; visibility 0.55: blue frames 1, 2 and 4 (0.59), not 3 (0.5)
    c = sequence_crops(data_root, "val", TINY.replace(max_crops_per_identity=4, min_visibility=0.55))
    np.testing.assert_array_equal(c.labels, [0, 1, 0, 1, 0, 0, 1, 2, 2])
    np.testing.assert_array_equal(c.frames, [1, 1, 2, 2, 3, 4, 4, 1, 2])
    # 1 crop per identity: linspace(0, n - 1, 1) = [0], the first frame
    one = sequence_crops(data_root, "val", TINY.replace(max_crops_per_identity=1))
    np.testing.assert_array_equal(one.labels, [0, 1, 2])
    np.testing.assert_array_equal(one.frames, [1, 1, 1])


def test_no_sequences_is_an_error(tmp_path: Path):
    with pytest.raises(DataError, match="no sequences in split 'val'"):
        sequence_crops(tmp_path, "val", TINY)


# ----------------------------------------------------------------------------------------- network
def test_tensor_scales_pixels_to_plus_minus_two_channels_first():
    images = np.zeros((2, 3, 5, 3), np.uint8)
    images[0, :, :, 0] = 255  # red channel of the first image
    images[1, 1, 2, 2] = 51  # one blue pixel of the second
    x = _tensor(images)
    assert tuple(x.shape) == (2, 3, 3, 5) and x.dtype == torch.float32
    # (v / 255 - 0.5) / 0.25: 0 -> -2, 255 -> 2, 51 -> (0.2 - 0.5) / 0.25 = -1.2
    assert float(x[0, 0].min()) == pytest.approx(2.0) and float(x[0, 1:].max()) == pytest.approx(-2.0)
    assert float(x[1, 2, 1, 2]) == pytest.approx(-1.2)
    assert float(x[1, 2].sum()) == pytest.approx(-2.0 * 14 - 1.2)


def test_network_layout_and_output_shape():
    nn = torch.nn
    net = _network(TINY.replace(width=3, embedding_dim=5))
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding, c.bias) for c in convs] == [
        (3, 3, (3, 3), (1, 1), None), (3, 6, (3, 3), (1, 1), None), (6, 12, (3, 3), (1, 1), None),
        (12, 12, (3, 3), (1, 1), None)]
    assert [m.num_features for m in net if isinstance(m, nn.BatchNorm2d)] == [3, 6, 12, 12]
    assert sum(isinstance(m, nn.ReLU) for m in net) == 4
    assert [m.kernel_size for m in net if isinstance(m, nn.MaxPool2d)] == [2, 2, 2]
    assert (net[-1].in_features, net[-1].out_features) == (12, 5)
    # after three 2x2 pools a 16x24 crop is 2x3 before the global average pool
    features = net[:-3](torch.zeros(1, 3, 16, 24))
    assert tuple(features.shape) == (1, 12, 2, 3)
    assert tuple(net(torch.zeros(7, 3, 16, 24)).shape) == (7, 5)


def _embedder(seed: int = 0) -> ReidEmbedder:
    torch.manual_seed(seed)
    return ReidEmbedder(_network(TINY), TINY)


def test_embeddings_are_unit_vectors_per_crop_whatever_the_batch():
    rng = np.random.default_rng(0)
    patches = rng.integers(0, 256, (5, 8, 8, 3), dtype=np.uint8)
    emb = _embedder()
    out = emb.embed_crops(patches)
    assert out.shape == (5, 8)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    # eval mode: a crop's embedding does not depend on its batch (BatchNorm uses running stats)
    np.testing.assert_allclose(emb.embed_crops(patches, batch=2), out, atol=1e-6)
    np.testing.assert_allclose(emb.embed_crops(patches[3:4]), out[3:4], atol=1e-6)
    # the raw network output, normalised by hand
    raw = emb.net(_tensor(patches)).detach().numpy()
    np.testing.assert_allclose(out, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-6)
    assert emb.embed_crops(patches[:0]).shape == (0, 8)


def test_embedder_crops_the_boxes_at_the_config_size():
    image = np.full((40, 60, 3), 128, np.uint8)
    image[10:20, 30:40] = RED
    emb = _embedder()
    box = np.array([[30.0, 10.0, 10.0, 10.0], [0.0, 0.0, 5.0, 5.0]])
    red = np.zeros((1, 8, 8, 3), np.uint8)
    red[..., 0] = 255
    grey = np.full((1, 8, 8, 3), 128, np.uint8)
    np.testing.assert_allclose(emb(image, box), emb.embed_crops(np.concatenate([red, grey])), atol=1e-6)


# ----------------------------------------------------------------------------------------- training
def _state(net) -> dict:
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.fixture(scope="module")
def trained(data_root: Path):
    """The tiny network trained on the train crops (2 epochs), with its details."""
    return train_reid(TINY, sequence_crops(data_root, "train", TINY))


def test_flip_half_mirrors_the_drawn_images_left_right_only():
    x = torch.arange(6 * 2 * 2 * 3, dtype=torch.float32).reshape(6, 2, 2, 3)
    before = x.clone()
    drawn = torch.rand(6, generator=torch.Generator().manual_seed(5)) < 0.5
    assert 0 < int(drawn.sum()) < 6  # this seed flips some images and keeps others
    out = flip_half(x, torch.Generator().manual_seed(5))
    reference = x.numpy()
    for i in range(6):
        # a mirrored image reverses each row (width, the last axis); rows and channels stay in place
        expected = reference[i, :, :, ::-1] if drawn[i] else reference[i]
        np.testing.assert_array_equal(out[i].numpy(), expected)
    assert torch.equal(x, before)


def test_flip_half_flips_about_half_of_many_images():
    out = flip_half(torch.tensor([[[[0.0, 1.0]]]]).repeat(2000, 1, 1, 1), torch.Generator().manual_seed(0))
    flipped = int((out[:, 0, 0, 0] == 1.0).sum())
    assert 900 < flipped < 1100  # Binomial(2000, 1/2): mean 1000, sd 22


def test_training_counts_its_steps(trained):
    net, details = trained
    # 7 crops in batches of 4: 2 steps per epoch, 2 epochs
    assert details["epochs"] == 2 and details["steps"] == 4 and len(details["loss_per_epoch"]) == 2
    assert details["train_crops"] == 7 and details["train_identities"] == 3 and details["train_minutes"] >= 0
    assert not net.training  # returned ready to embed


def test_training_is_seeded(data_root: Path, trained):
    train = sequence_crops(data_root, "train", TINY)
    a = _state(trained[0])
    b = _state(train_reid(TINY, train)[0])
    assert all(torch.equal(a[k], b[k]) for k in a)  # same seed, same weights
    other = _state(train_reid(TINY.replace(seed=1), train)[0])
    assert any(not torch.equal(a[k], other[k]) for k in a if a[k].is_floating_point())


def test_training_learns_three_colours(data_root: Path):
    # three single-colour identities: the cross-entropy falls from about ln 3 = 1.1 to under half
    _, details = train_reid(TINY.replace(epochs=10), sequence_crops(data_root, "train", TINY))
    losses = details["loss_per_epoch"]
    assert losses[0] > 0.8 and losses[-1] < 0.5 * losses[0] and details["steps"] == 20


def test_training_prints_progress_only_when_asked(data_root: Path, capsys):
    train = sequence_crops(data_root, "train", TINY.replace(epochs=1))
    train_reid(TINY.replace(epochs=1), train)
    assert capsys.readouterr().out == ""
    _, details = train_reid(TINY.replace(epochs=1), train, progress=True)
    assert capsys.readouterr().out == f"ReID epoch 1/1: loss {details['loss_per_epoch'][0]:.3f}\n"


def test_saved_weights_load_as_the_trained_network(data_root: Path, tmp_path: Path, trained, capsys):
    report = train_cached(TINY, data_root, tmp_path, progress=True)
    assert capsys.readouterr().out.count("ReID epoch") == 2  # progress reaches the training loop
    assert (report.epochs, report.steps, report.device) == (2, 4, "cpu")
    assert report.train_minutes >= 0
    assert report.details == {k: trained[1][k] for k in ("loss_per_epoch", "train_crops", "train_identities")}
    embedder = load_reid(tmp_path / "weights.pt")
    assert embedder.config == TINY and not embedder.net.training
    net = trained[0]
    patches = sequence_crops(data_root, "val", TINY).images
    np.testing.assert_allclose(embedder.embed_crops(patches), ReidEmbedder(net, TINY).embed_crops(patches), atol=1e-6)


def test_a_checkpoint_of_another_shape_is_refused(tmp_path: Path):
    torch.save({"config": TINY.to_dict(), "state_dict": _network(TINY.replace(width=8)).state_dict()}, tmp_path / "w.pt")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'w.pt'}: not a labkit ReID checkpoint")):
        load_reid(tmp_path / "w.pt")
    torch.save({"config": {**TINY.to_dict(), "epochs": 0}, "state_dict": {}}, tmp_path / "c.pt")
    with pytest.raises(DataError, match="'epochs' must be an integer >= 1"):
        load_reid(tmp_path / "c.pt")


# ----------------------------------------------------------------------------------------- retrieval
def _angles(degrees, norms):
    rad = np.radians(degrees)
    return np.stack([np.cos(rad), np.sin(rad)], axis=1) * np.asarray(norms, float)[:, None]


def test_rank1_and_map_by_hand():
    # six crops on a circle (cosine distance grows with the angle between them), one sequence,
    # frames far apart (no junk), every crop a query; the lengths differ (cosine ignores them).
    angles, labels = [0, 20, 50, 60, 180, 33], [0, 0, 1, 1, 2, 2]
    crops = CropSet(np.zeros((6, 2, 2, 3), np.uint8), np.array(labels), np.array(["s"] * 6), np.arange(6) * 100)
    s = retrieval_scores(_angles(angles, [2, 0.5, 1, 3, 1, 0.1]), crops, query_every=1, exclude_frames=0)
    # query  0 deg: 20(id0) 33 50 60 180          -> hit at rank 1: AP 1
    # query 20 deg: 33(id2) 0(id0) 50 60 180       -> hit at rank 2: AP 1/2, rank-1 miss
    # query 50 deg: 60(id1) ...                    -> AP 1;  query 60 deg: 50(id1) ... -> AP 1
    # query 180 deg: 60 50 33(id2) 20 0            -> hit at rank 3: AP 1/3, miss
    # query 33 deg: 20 50 60 0 180(id2)            -> hit at rank 5: AP 1/5, miss
    assert s["queries"] == 6 and s["gallery"] == 6
    assert s["rank1"] == pytest.approx(3 / 6)
    assert s["mAP"] == pytest.approx((1 + 1 / 2 + 1 + 1 + 1 / 3 + 1 / 5) / 6)


def test_two_matches_ranked_apart():
    # query 0's two matches come 1st and 3rd: AP (1/1 + 2/3) / 2; the other queries are skipped by
    # query_every (label 0 is queried at its 1st crop by frame only) or have no match (labels 1, 2)
    crops = CropSet(np.zeros((4, 2, 2, 3), np.uint8), np.array([0, 0, 0, 1]), np.array(["s"] * 4),
                    np.array([10, 30, 20, 10]))
    emb = _angles([0, 5, 90, 45], [1, 1, 1, 1])
    s = retrieval_scores(emb, crops, query_every=3, exclude_frames=0)
    assert s == {"rank1": 1.0, "mAP": pytest.approx((1 + 2 / 3) / 2), "queries": 1, "gallery": 4}
    # query_every=2 queries label 0 at frames 10 and 30 (1st and 3rd by frame, not by position):
    # the frame-30 crop (5 deg) ranks 0 deg (id0), 45 (id1), 90 (id0): AP (1 + 2/3) / 2 as well
    s = retrieval_scores(emb, crops, query_every=2, exclude_frames=0)
    assert s["queries"] == 2 and s["rank1"] == 1.0 and s["mAP"] == pytest.approx((1 + 2 / 3) / 2)
    # by position the 2nd query would be the 90 deg crop: ranks 45 (id1), 5, 0 -> AP (1/2 + 2/3) / 2


def test_junk_window_is_inclusive_and_per_sequence():
    crops = CropSet(np.zeros((3, 2, 2, 3), np.uint8), np.array([0, 0, 1]), np.array(["s"] * 3), np.array([1, 6, 1]))
    emb = _angles([0, 10, 90], [1, 1, 1])
    # frames 1 and 6 are 5 apart: junk at exclude_frames=5, no query has a match left
    assert retrieval_scores(emb, crops, 1, 5) == {"rank1": None, "mAP": None, "queries": 0, "gallery": 3}
    s = retrieval_scores(emb, crops, 1, 4)
    assert (s["queries"], s["rank1"], s["mAP"]) == (2, 1.0, 1.0)
    # the same frame in another sequence is not a near duplicate
    other = CropSet(crops.images, crops.labels, np.array(["a", "b", "a"]), np.array([1, 1, 1]))
    s = retrieval_scores(emb, other, 1, 5)
    assert (s["queries"], s["rank1"], s["mAP"]) == (2, 1.0, 1.0)


def test_evaluation_on_hand_made_val_crops(data_root: Path, tmp_path: Path, trained):
    embedder = ReidEmbedder(trained[0], TINY)
    scores = evaluate_reid(embedder, TINY, data_root)
    # colour histograms separate red, blue and green perfectly: every one of the 7 val crops
    # (exclude_frames=0 leaves out only the query itself) finds its own colour first
    assert scores["histogram"] == {"rank1": 1.0, "mAP": 1.0, "queries": 7, "gallery": 7}
    assert scores["val_identities"] == 3 and scores["ms_per_crop"] > 0
    val = sequence_crops(data_root, "val", TINY)
    assert scores["reid"] == retrieval_scores(embedder.embed_crops(val.images), val, 1, 0)
    torch.save({"config": TINY.to_dict(), "state_dict": trained[0].state_dict()}, tmp_path / "weights.pt")
    cached = evaluate_cached(tmp_path / "weights.pt", TINY, data_root)
    assert cached.metrics == {"rank1": scores["reid"]["rank1"], "mAP": scores["reid"]["mAP"], "histogram_rank1": 1.0,
                              "histogram_mAP": 1.0, "ms_per_crop": cached.details["retrieval"]["ms_per_crop"]}
    assert cached.details["retrieval"]["reid"] == scores["reid"] and cached.metrics["ms_per_crop"] > 0


# ----------------------------------------------------------------------------------------- wiring
def test_build_reid_asks_the_registry_for_track_reid(monkeypatch, tmp_path: Path):
    """The registry build itself is the slow test in test_track_reid.py; here only what is asked of it."""
    import labkit.models
    from labkit.track.reid import build_reid

    calls = []

    class Built:
        weights = tmp_path / "weights.pt"

    monkeypatch.setattr(labkit.models, "build", lambda name, **kw: calls.append((name, kw)) or Built)
    assert build_reid(TINY, "data", tmp_path / "cache", progress=True) == tmp_path / "weights.pt"
    assert calls == [("track-reid", {"config": TINY, "data_root": "data", "cache_root": tmp_path / "cache",
                                     "progress": True})]


def test_sequences_without_frames_are_refused(data_root: Path, tmp_path: Path):
    import shutil

    shutil.copytree(data_root / "sequences" / "val" / "s1", tmp_path / "sequences" / "val" / "s1",
                    ignore=shutil.ignore_patterns("img1"))
    with pytest.raises(DataError, match="frames folder missing or empty"):
        sequence_crops(tmp_path, "val", TINY)

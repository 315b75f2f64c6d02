"""The course's appearance embedding network (ReID), trained on crops of the train sequences.

Data: every ground-truth box of the embedded dataset's ``train`` sequences that is at least
``min_visibility`` visible becomes a crop (resized to ``crop_height x crop_width``); the identity
is ``(sequence, track id)``. At most ``max_crops_per_identity`` crops per identity, evenly spread
over its frames.

Network: four 3x3 conv blocks (BatchNorm, ReLU, 2x2 max-pool after the first three), global
average pooling and a linear layer to an ``embedding_dim`` vector, L2-normalised. Training is the
"ID-discriminative embedding" baseline (L. Zheng, Y. Yang, A. Hauptmann, "Person
Re-identification: Past, Present and Future", arXiv:1610.02984, 2016): softmax cross-entropy over
the train identities through a linear classifier on the embedding (the classifier is dropped
after training), Adam, a budget in epochs, horizontal-flip augmentation, every random choice seeded.

Evaluation (:func:`retrieval_scores`): on the ``val`` sequences every ``query_every``-th crop of
an identity is a query and all crops are the gallery; gallery crops of the query's own identity
within ``exclude_frames`` frames of it are left out (near-identical neighbours, the "junk" images
of Market-1501, L. Zheng et al., ICCV 2015). Ranking by cosine distance gives rank-1 (top match
has the query's identity) and mAP (mean over queries of the average precision of the ranked
gallery: the mean of the precision at the rank of each correct match). The colour-histogram
embedder of :mod:`labkit.track.appearance` is scored the same way beside it.

Cache: the ReID is the model registry's ``track-reid`` (``track-reid-tiny`` for tests and
``LABKIT_BUDGET=ci``): :func:`train_cached` and :func:`evaluate_cached` are its train / evaluate
steps, so :func:`labkit.models.load` / ``labkit models build track-reid`` build it once into
``<artifacts>/models/track-reid-<key>/`` (``weights.pt``, then ``metrics.json`` in the registry's
layout: ``metrics`` rank1 / mAP / histogram_rank1 / histogram_mAP / ms_per_crop, ``details``).
:func:`build_reid` builds a given config through the registry; :func:`load_reid` returns an
embedder for :class:`labkit.track.tracker.Tracker`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from labkit.artifacts import read_model_metrics
from labkit.configfile import YamlConfig
from labkit.data.mot import read_mot
from labkit.errors import DataError

WEIGHTS = "weights.pt"


@dataclass(frozen=True)
class ReidConfig(YamlConfig):
    """Every knob of one ReID build (see the module docstring)."""

    KIND: ClassVar[str] = "ReID"

    name: str = "reid"
    dataset_size: str = "default"
    dataset_seed: int = 0
    seed: int = 0
    epochs: int = 12
    batch: int = 64
    lr: float = 0.003
    embedding_dim: int = 64
    width: int = 32  #: channels of the first conv block (doubled twice)
    crop_height: int = 32
    crop_width: int = 32
    min_visibility: float = 0.6
    max_crops_per_identity: int = 60
    query_every: int = 10
    exclude_frames: int = 5

    def __post_init__(self) -> None:
        for name in ("epochs", "batch", "embedding_dim", "width", "crop_height", "crop_width",
                     "max_crops_per_identity", "query_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise DataError(f"'{name}' must be an integer >= 1, got {value!r}")
        if not 0 < float(self.lr) < 1:
            raise DataError(f"'lr' must be in (0, 1), got {self.lr!r}")
        if not 0 <= float(self.min_visibility) <= 1:
            raise DataError(f"'min_visibility' must be in [0, 1], got {self.min_visibility!r}")
        if self.dataset_size not in ("default", "small"):
            raise DataError(f"'dataset_size' must be 'default' or 'small', got {self.dataset_size!r}")


# ----------------------------------------------------------------------------------------- data
@dataclass
class CropSet:
    """Crops ``(N, h, w, 3)`` uint8 RGB with their identity label, sequence name and frame."""

    images: np.ndarray
    labels: np.ndarray
    sequences: np.ndarray
    frames: np.ndarray


def sequence_crops(data_root: str | Path, split: str, config: ReidConfig) -> CropSet:
    """Crops of every identity of a split (see the module docstring); labels are 0..K-1."""
    from labkit.track.appearance import crops
    from labkit.track.sequence import open_sequence

    seq_dirs = sorted((Path(data_root) / "sequences" / split).glob("*/seqinfo.ini"))
    if not seq_dirs:
        raise DataError(f"no sequences in split {split!r}", source=str(Path(data_root) / "sequences"))
    rng = np.random.default_rng(config.seed)
    images, labels, seqs, frames = [], [], [], []
    label_of: dict[tuple[str, int], int] = {}
    for info in seq_dirs:
        seq = open_sequence(info.parent, require_frames=True)
        gt = read_mot(seq.gt_file, "gt")
        chosen: dict[int, list[int]] = {}
        for f, det in gt.items():
            for tid, vis in zip(det.track_id, det.get("visibility", np.ones(len(det)))):
                if vis >= config.min_visibility:
                    chosen.setdefault(int(tid), []).append(f)
        wanted: dict[int, list[int]] = {}
        for tid, fs in chosen.items():
            if len(fs) < 2:
                continue
            keep = np.unique(np.linspace(0, len(fs) - 1, min(len(fs), config.max_crops_per_identity)).round().astype(int))
            for f in np.asarray(fs)[keep]:
                wanted.setdefault(int(f), []).append(tid)
            label_of[(seq.name, tid)] = len(label_of)
        for f in sorted(wanted):
            image = seq.read_frame(f)
            det = gt[f]
            rows = [int(np.nonzero(det.track_id == tid)[0][0]) for tid in wanted[f]]
            images.append(crops(image, det.xywh[rows], (config.crop_height, config.crop_width)))
            labels += [label_of[(seq.name, tid)] for tid in wanted[f]]
            seqs += [seq.name] * len(rows)
            frames += [f] * len(rows)
    order = rng.permutation(len(labels)) if split == "train" else np.arange(len(labels))
    return CropSet(np.concatenate(images)[order], np.asarray(labels)[order], np.asarray(seqs)[order],
                   np.asarray(frames)[order])


# ----------------------------------------------------------------------------------------- network
def _network(config: ReidConfig):
    import torch.nn as nn

    w = config.width

    def block(cin: int, cout: int, pool: bool) -> list:
        layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        return layers + ([nn.MaxPool2d(2)] if pool else [])

    return nn.Sequential(*block(3, w, True), *block(w, 2 * w, True), *block(2 * w, 4 * w, True),
                         *block(4 * w, 4 * w, False), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4 * w, config.embedding_dim))


def _tensor(images: np.ndarray):
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    return (x - 0.5) / 0.25


class ReidEmbedder:
    """A trained ReID network as an embedder: ``embedder(image, xywh) -> (N, D)`` unit vectors."""

    def __init__(self, net, config: ReidConfig) -> None:
        self.net, self.config = net.eval(), config

    def embed_crops(self, patches: np.ndarray, batch: int = 256) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        out = []
        with torch.no_grad():
            for i in range(0, len(patches), batch):
                out.append(F.normalize(self.net(_tensor(patches[i:i + batch])), dim=1).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.config.embedding_dim))

    def __call__(self, image: np.ndarray, xywh: np.ndarray) -> np.ndarray:
        from labkit.track.appearance import crops

        return self.embed_crops(crops(image, xywh, (self.config.crop_height, self.config.crop_width)))


def flip_half(x: Any, generator: Any) -> Any:
    """``x`` (a batch, ``N x C x H x W``) with each image mirrored left-right with probability 1/2.

    One uniform draw per image from ``generator`` (``draw < 0.5`` flips it); the width axis is
    the last one. Returns a new tensor; ``x`` is left as it was.
    """
    import torch

    x = x.clone()
    flip = torch.rand(len(x), generator=generator) < 0.5
    x[flip] = x[flip].flip(-1)
    return x


def train_reid(config: ReidConfig, train: CropSet, *, progress: bool = False) -> tuple[Any, dict[str, Any]]:
    """Train the network on ``train`` crops for ``config.epochs`` epochs; returns ``(net, details)``."""
    import torch
    import torch.nn as nn

    from labkit.repro import seed_everything

    seed_everything(config.seed)
    net = _network(config)
    head = nn.Linear(config.embedding_dim, int(train.labels.max()) + 1)
    params = list(net.parameters()) + list(head.parameters())
    optimiser = torch.optim.Adam(params, lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    x_all, y_all = _tensor(train.images), torch.from_numpy(train.labels).long()
    losses, steps, start = [], 0, time.perf_counter()
    for epoch in range(config.epochs):
        net.train()
        order = torch.randperm(len(y_all), generator=generator)
        total = 0.0
        for i in range(0, len(order), config.batch):
            idx = order[i:i + config.batch]
            x = flip_half(x_all[idx], generator)
            loss = nn.functional.cross_entropy(head(net(x)), y_all[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(idx)
            steps += 1
        losses.append(total / len(y_all))
        if progress:
            print(f"ReID epoch {epoch + 1}/{config.epochs}: loss {losses[-1]:.3f}")
    return net.eval(), {"epochs": config.epochs, "steps": steps, "train_minutes": (time.perf_counter() - start) / 60,
                        "loss_per_epoch": losses, "train_crops": int(len(y_all)),
                        "train_identities": int(train.labels.max()) + 1}


# ----------------------------------------------------------------------------------------- scoring
def average_precision(relevant_in_rank_order: np.ndarray) -> float:
    """AP of one ranked list: mean of the precision at the rank of each relevant item (0 if none)."""
    hits = np.asarray(relevant_in_rank_order, dtype=bool)
    if not hits.any():
        return 0.0
    ranks = np.nonzero(hits)[0] + 1
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


def retrieval_scores(embeddings: np.ndarray, crops_: CropSet, query_every: int, exclude_frames: int) -> dict[str, float]:
    """Rank-1 and mAP of the val protocol in the module docstring (queries with no valid match are skipped)."""
    e = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    queries = []
    for label in np.unique(crops_.labels):
        idx = np.nonzero(crops_.labels == label)[0]
        idx = idx[np.argsort(crops_.frames[idx], kind="stable")]
        queries += idx[::query_every].tolist()
    rank1, aps = [], []
    for q in queries:
        same = crops_.labels == crops_.labels[q]
        junk = same & (np.abs(crops_.frames - crops_.frames[q]) <= exclude_frames) & (crops_.sequences == crops_.sequences[q])
        valid = ~junk
        if not (same & valid).any():
            continue
        dist = 1.0 - e[valid] @ e[q]
        order = np.argsort(dist, kind="stable")
        relevant = same[valid][order]
        rank1.append(bool(relevant[0]))
        aps.append(average_precision(relevant))
    return {"rank1": float(np.mean(rank1)) if rank1 else None, "mAP": float(np.mean(aps)) if aps else None,
            "queries": len(aps), "gallery": int(len(crops_.labels))}


def evaluate_reid(embedder: ReidEmbedder, config: ReidConfig, data_root: str | Path) -> dict[str, Any]:
    """ReID and colour-histogram retrieval scores on the val crops, and the ReID's ms per crop."""
    from labkit.track.appearance import HistogramEmbedder

    val = sequence_crops(data_root, "val", config)
    start = time.perf_counter()
    reid = embedder.embed_crops(val.images)
    ms_per_crop = 1000 * (time.perf_counter() - start) / max(len(val.labels), 1)
    hist = HistogramEmbedder().embed_crops(val.images)
    return {"reid": retrieval_scores(reid, val, config.query_every, config.exclude_frames),
            "histogram": retrieval_scores(hist, val, config.query_every, config.exclude_frames),
            "ms_per_crop": ms_per_crop, "val_identities": int(len(np.unique(val.labels)))}


# ----------------------------------------------------------------------------------------- registry
def train_cached(config: ReidConfig, data_root: Path, out: Path, progress: bool = False):
    """The registry's train step: train on the train crops and save ``out/weights.pt`` (config +
    state dict; a build this small is not resumed, an interrupted one starts again)."""
    import torch

    from labkit.models.registry import Trained

    net, details = train_reid(config, sequence_crops(data_root, "train", config), progress=progress)
    torch.save({"config": config.to_dict(), "state_dict": net.state_dict()}, Path(out) / WEIGHTS)
    return Trained(epochs=details["epochs"], steps=details["steps"], train_minutes=details["train_minutes"],
                   device="cpu", details={k: details[k] for k in ("loss_per_epoch", "train_crops", "train_identities")})


def evaluate_cached(weights: Path, config: ReidConfig, data_root: Path, progress: bool = False):
    """The registry's evaluate step: ReID and colour-histogram retrieval on the val crops
    (:func:`evaluate_reid`); the full retrieval tables go to ``details["retrieval"]``."""
    from labkit.models.registry import Scores

    scores = evaluate_reid(load_reid(weights), config, data_root)
    return Scores(metrics={"rank1": scores["reid"]["rank1"], "mAP": scores["reid"]["mAP"],
                           "histogram_rank1": scores["histogram"]["rank1"], "histogram_mAP": scores["histogram"]["mAP"],
                           "ms_per_crop": scores["ms_per_crop"]},
                  details={"retrieval": scores})


def build_reid(config: ReidConfig | Mapping[str, Any] | str | Path, data_root: str | Path | None = None,
               cache_root: str | Path | None = None, *, progress: bool = False) -> Path:
    """Build (unless cached) the ReID of ``config`` through the registry (``track-reid`` with that
    config, :func:`labkit.models.build`) and return its weights path."""
    from labkit.models import build

    return build("track-reid", config=config, data_root=data_root, cache_root=cache_root, progress=progress).weights


def load_reid(weights: str | Path) -> ReidEmbedder:
    """The embedder of a built ReID (``weights.pt`` of :func:`build_reid`)."""
    import torch

    weights = Path(weights)
    if not weights.is_file():
        raise DataError("ReID weights not found (build them with `labkit models build track-reid`)", source=str(weights))
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        config = ReidConfig.from_mapping(state["config"], source=str(weights))
        net = _network(config)
        net.load_state_dict(state["state_dict"])
    except (KeyError, RuntimeError, TypeError) as exc:
        raise DataError(f"not a labkit ReID checkpoint ({exc})", source=str(weights)) from None
    return ReidEmbedder(net, config)


def reid_metrics(weights: str | Path) -> dict[str, Any]:
    """The ``metrics.json`` of a built ReID."""
    return read_model_metrics(weights)

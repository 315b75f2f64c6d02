"""Semantic-segmentation samples from a COCO dataset whose images carry a ``semantic_mask`` PNG.

Preprocessing that cannot silently misalign: images are resized bilinearly, label masks only with
nearest neighbour (so no invented class ids), padding fills the mask with the ignore index, and
the normalisation constants are part of the config that every checkpoint records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from labkit.data.annotations import Dataset, ImageRecord
from labkit.data.images import load_image, load_label_mask
from labkit.errors import DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """Everything that turns a file into a network input; recorded with every checkpoint."""

    size: int = 160
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    ignore_index: int = 255

    def transform(self, train: bool, strength: float = 0.5) -> A.Compose:
        """Letterbox to ``size`` (bilinear image, nearest mask, mask padded with ignore), then
        light geometric/photometric augmentation when ``train`` (``strength`` in [0, 1])."""
        steps: list = [
            A.LongestMaxSize(max_size=self.size, interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST),
            A.PadIfNeeded(self.size, self.size, border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=self.ignore_index),
        ]
        if train and strength > 0:
            steps += [
                A.HorizontalFlip(p=0.5),
                A.Affine(scale=(1 - 0.2 * strength, 1 + 0.2 * strength), translate_percent=(-0.05 * strength, 0.05 * strength),
                         interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST,
                         border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=self.ignore_index, p=0.7 * strength),
                A.RandomBrightnessContrast(0.2 * strength, 0.2 * strength, p=0.5 * strength),
            ]
        steps.append(A.Normalize(mean=self.mean, std=self.std, max_pixel_value=255.0))
        return A.Compose(steps)


class SemanticDataset(TorchDataset):
    """``(image tensor (3,S,S) float32, mask tensor (S,S) int64)`` pairs.

    ``data_root`` is the generated dataset folder; image ``semantic_mask`` paths are relative to it.
    """

    def __init__(self, dataset: Dataset, data_root: Path, prep: Preprocessing, *, train: bool, strength: float = 0.5,
                 seed: int = 0):
        self.records: list[ImageRecord] = [r for r in dataset.images if r.extra.get("semantic_mask")]
        if not self.records:
            raise DataError("no image has a 'semantic_mask' field", source=dataset.source)
        self.dataset, self.root, self.prep = dataset, Path(data_root), prep
        self.transform = prep.transform(train, strength)
        self.seed, self.epoch = seed, 0

    def __len__(self) -> int:
        return len(self.records)

    def sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The raw ``(image RGB uint8, label mask uint8)`` pair, checked to be the same size."""
        rec = self.records[index]
        image = load_image(self.dataset.image_path(rec))
        mask_path = self.root / rec.extra["semantic_mask"]
        mask = load_label_mask(mask_path)
        if mask.shape != image.shape[:2]:
            raise DataError(f"mask is {mask.shape} but the image is {image.shape[:2]} (never resized silently)",
                            source=str(mask_path), record=rec.id)
        return image, mask

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self.sample(index)
        # one seed per (run seed, epoch, sample): reproducible whatever the worker layout
        self.transform.set_random_seed((self.seed * 1_000_003 + self.epoch * 10_007 + index) % 2**32)
        out = self.transform(image=image, mask=mask)
        return torch.from_numpy(out["image"].transpose(2, 0, 1).copy()), torch.from_numpy(out["mask"].astype(np.int64))

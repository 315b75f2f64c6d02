"""Segmentation figures: what each panel shows, checked pixel by pixel on hand-made label maps."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from labkit.data.annotations import Detections
from labkit.data.coco import coco_to_dataset
from labkit.errors import DataError
from labkit.segment.plots import (FALSE_POSITIVE_COLOUR, IGNORE_COLOUR, MISSED_COLOUR, RIGHT_COLOUR, class_overlay,
                                  mask_errors, paint_instances, plot_class_masks, plot_confusion, plot_error_map,
                                  plot_instance_comparison, plot_pointrend_crops, plot_refinement_crops,
                                  plot_semantic_predictions, plot_training_log)
from labkit.viz import color_for

NAMES = ["background", "disc", "rod"]
GREY = 100


def _blend(colour: tuple[int, int, int], alpha: float) -> np.ndarray:
    """Hand-computed blend of the grey test image with a colour, as the overlays do it (truncated)."""
    return ((1 - alpha) * GREY + alpha * np.array(colour, float)).astype(np.uint8)


def _scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 40 x 60 grey image; truth: a disc square (rows/cols 5..14), a rod row band (rows 30..31),
    row 0 ignored; prediction: the disc found, the rod painted as disc, nothing ignored."""
    image = np.full((40, 60, 3), GREY, np.uint8)
    truth = np.zeros((40, 60), np.uint8)
    truth[5:15, 5:15] = 1
    truth[30:32, 10:50] = 2
    truth[0, :] = 255
    pred = np.where(truth == 255, 0, truth).astype(np.uint8)
    pred[30:32, 10:50] = 1
    return image, truth, pred


def test_class_overlay_colours_classes_and_ignore() -> None:
    image, truth, _ = _scene()
    out = class_overlay(image, truth)
    assert out.shape == image.shape
    assert (out[10, 10] == _blend(color_for(1), 0.5)).all()      # inside the disc (not on its outline)
    assert (out[0, 30] == IGNORE_COLOUR).all()                    # ignore row
    assert (out[20, 40] == GREY).all()                            # background untouched
    only_rod = class_overlay(image, truth, classes=[2])
    assert (only_rod[10, 10] == GREY).all() and not (only_rod[30, 30] == GREY).all()


def test_semantic_predictions_panels() -> None:
    image, truth, pred = _scene()
    fig = plot_semantic_predictions([image, image], [truth, truth], [pred, truth], NAMES, titles=["a.png", "b.png"])
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 6
    titles = [ax.get_title() for ax in image_axes]
    # labelled pixels: 40*60 - 60 ignored = 2340; wrong: the 80 rod pixels -> 2260 / 2340 = 96.6 %
    assert titles == ["a.png", "ground truth", "prediction (96.6% right)", "b.png", "ground truth",
                      "prediction (100.0% right)"]
    gt_panel, pred_panel = image_axes[1].images[0].get_array(), image_axes[2].images[0].get_array()
    assert gt_panel.shape == (40, 60, 3)
    # the 2-px rod band is all outline, drawn opaque: rod colour in the truth, disc colour in the prediction
    assert (gt_panel[30, 30] == color_for(2)).all() and (pred_panel[30, 30] == color_for(1)).all()
    assert (pred_panel[10, 10] == _blend(color_for(1), 0.5)).all()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["disc", "rod"]


def test_semantic_predictions_bad_inputs() -> None:
    image, truth, pred = _scene()
    with pytest.raises(DataError, match="as many"):
        plot_semantic_predictions([image], [truth], [], NAMES)
    with pytest.raises(DataError, match="row 0"):
        plot_semantic_predictions([image], [truth], [pred[:, :30]], NAMES)


def test_confusion_heat_map_is_row_normalised() -> None:
    counts = np.array([[90, 10, 0], [25, 75, 0], [0, 0, 0]])  # no rod pixel in the truth
    fig = plot_confusion(counts, NAMES)
    ax = fig.axes[0]
    shown = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
    np.testing.assert_allclose(shown[:2], [[0.9, 0.1, 0.0], [0.25, 0.75, 0.0]])
    assert np.isnan(shown[2]).all()
    assert sorted(t.get_text() for t in ax.texts) == sorted(["90", "10", "0", "25", "75", "0"])
    assert [t.get_text() for t in ax.get_yticklabels()] == NAMES
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    with pytest.raises(DataError, match=r"\(2, 2\)"):
        plot_confusion(np.eye(2), NAMES)


def test_paint_instances_gives_each_instance_its_colour() -> None:
    image = np.full((20, 20, 3), GREY, np.uint8)
    masks = np.zeros((2, 20, 20), bool)
    masks[0, 2:8, 2:8] = True
    masks[1, 10:18, 10:18] = True
    out = paint_instances(image, masks, alpha=0.5)
    assert (out[5, 5] == _blend(color_for(1), 0.5)).all()
    assert (out[14, 14] == _blend(color_for(2), 0.5)).all()
    assert (out[2, 2] == color_for(1)).all()                     # outline drawn opaque
    assert (out[0, 19] == GREY).all()


def test_instance_comparison_shows_merged_objects(tmp_path) -> None:
    image = np.full((40, 60, 3), GREY, np.uint8)
    cv2.imwrite(str(tmp_path / "1.png"), image)
    cv2.imwrite(str(tmp_path / "2.png"), image)
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 10, 10], "area": 100, "iscrowd": 0,
             "segmentation": [[5, 5, 15, 5, 15, 15, 5, 15]]},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [15, 5, 10, 10], "area": 100, "iscrowd": 0,
             "segmentation": [[15, 5, 25, 5, 25, 15, 15, 15]]},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [30, 20, 10, 10], "area": 100, "iscrowd": 0,
             "segmentation": [[30, 20, 40, 20, 40, 30, 30, 30]]}]
    ds = coco_to_dataset({"images": [{"id": i, "file_name": f"{i}.png", "width": 60, "height": 40, "scene_id": 7}
                                     for i in (1, 2)],
                          "annotations": anns, "categories": [{"id": 1, "name": "disc"}]}, root=tmp_path)
    merged = np.zeros((1, 40, 60), bool)
    merged[0, 5:15, 5:25] = True
    two = np.zeros((2, 40, 60), bool)
    two[0, 5:15, 5:15], two[1, 5:15, 15:25] = True, True
    preds = {"unet": {1: Detections.from_masks(merged, [1], score=[0.9]), 2: Detections.empty(with_score=True)},
             "yolo": {1: Detections.from_masks(two, [1, 1], score=[0.9, 0.3]), 2: Detections.empty(with_score=True)}}
    fig = plot_instance_comparison(ds, preds, n=1)                # image 1 has the most objects
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == ["1.png: ground truth\n2 instances", "unet\n1 instances",
                                                   "yolo\n1 instances"]  # yolo's 0.3 mask is below min_score
    truth_panel, unet_panel = (ax.images[0].get_array() for ax in fig.axes[:2])
    assert (truth_panel[10, 10] != truth_panel[10, 20]).any()      # two objects, two colours
    assert (unet_panel[10, 10] == unet_panel[10, 20]).all()        # merged: one colour
    assert len(plot_instance_comparison(ds, preds, [1, 2], min_score=0.0).axes) == 6
    # one scene: the second image is taken only when the scenes run out
    shown = [ax.get_title().split(":")[0] for ax in plot_instance_comparison(ds, preds, n=2).axes[::3]]
    assert shown == ["1.png", "2.png"]
    cv2.imwrite(str(tmp_path / "3.png"), image)
    ds.images.append(dataclasses.replace(ds.images[1], id=3, file_name="3.png", extra={"scene_id": 8}))
    preds = {name: {**p, 3: Detections.empty(with_score=True)} for name, p in preds.items()}
    shown = [ax.get_title().split(":")[0] for ax in plot_instance_comparison(ds, preds, n=2).axes[::3]]
    assert shown == ["1.png", "3.png"]  # image 2 has as many objects as 3 and a lower id, but scene 7 is shown
    with pytest.raises(DataError, match="no prediction for image id 2"):
        plot_instance_comparison(ds, {"unet": {1: preds["unet"][1]}}, [1, 2])


def test_class_masks_titles_carry_per_image_iou() -> None:
    image, truth, pred = _scene()
    fig = plot_class_masks(image, truth, {"ce": pred, "perfect": np.where(truth == 255, 0, truth)}, [1, 2], NAMES)
    assert len(fig.axes) == 3
    # ce: disc TP 100, FP 80 (the rod) -> IoU 100/180 = 0.56; rod never predicted -> 0
    assert [ax.get_title() for ax in fig.axes] == ["ground truth", "ce\nIoU disc 0.56, rod 0.00",
                                                   "perfect\nIoU disc 1.00, rod 1.00"]
    truth_panel = fig.axes[0].images[0].get_array()
    assert (truth_panel[20, 40] == GREY).all() and (truth_panel[0, 0] == IGNORE_COLOUR).all()
    only_disc = plot_class_masks(image, truth, {"ce": pred}, [1], NAMES)
    assert only_disc.axes[1].get_title() == "ce\nIoU disc 0.56"
    assert (only_disc.axes[0].images[0].get_array()[30, 30] == GREY).all()  # the rod is not drawn
    with pytest.raises(DataError, match="prediction 'ce'"):
        plot_class_masks(image, truth, {"ce": pred[:20]}, [1], NAMES)


def test_training_log_figure_is_written(tmp_path) -> None:
    rows = [{"epoch": e, "train_loss": 1.0 / e, "iou_disc": 0.1 * e, "iou_rod": None, "val_miou": 0.1 * e}
            for e in (1, 2)]
    path = plot_training_log(rows, tmp_path / "log.png")
    png = cv2.imread(str(path))
    assert png is not None and png.shape[:2] == (350, 1000)


def test_mask_errors_colours() -> None:
    truth = np.array([[1, 1, 0, 0]], bool)
    mask = np.array([[1, 0, 1, 0]], bool)
    out = mask_errors(truth, mask)
    assert [tuple(p) for p in out[0]] == [RIGHT_COLOUR, MISSED_COLOUR, FALSE_POSITIVE_COLOUR, (0, 0, 0)]


def test_refinement_crops_sit_where_the_masks_differ() -> None:
    truth = np.zeros((64, 64), bool)
    truth[10:30, 10:30] = True
    before = truth.astype(float)
    before[10:30, 28:30] = 0.2            # the square's right edge missed, 40 px
    after = truth.astype(float)
    after[9, 10:14] = 0.9                 # 4 false-positive px just above the top edge
    fig = plot_refinement_crops(truth, before, after, n=1, side=16, labels=("coarse", "fine"))
    assert len(fig.axes) == 2
    # the only disagreement is the 20 x 2 strip rows 10..29, cols 28..29; the 16-px window with the
    # most of it is centred on its first rows (ties -> lower index): rows 10..25 hold 16 x 2 = 32 px
    (ax_before, ax_after) = fig.axes
    assert ax_before.get_title().startswith("coarse: 32 px wrong\n")
    assert ax_after.get_title().startswith("fine: 0 px wrong\n")  # its 4 errors are outside the crop
    crop = ax_before.images[0].get_array()
    assert crop.shape == (16, 16, 3)
    assert {tuple(p) for p in crop.reshape(-1, 3)} >= {MISSED_COLOUR, RIGHT_COLOUR}
    titles = [ax.get_title() for ax in plot_refinement_crops(truth, before, after, n=3, side=16).axes]
    assert len(titles) == 6 and titles[0].startswith("before: 32 px wrong")
    assert any(t.startswith("after: 4 px wrong") for t in titles[2:])  # a later crop holds the 4 false positives
    empty = plot_refinement_crops(truth, before, before, n=2, side=16)  # no change: crops on the truth's boundary
    assert len(empty.axes) == 4
    for ax in empty.axes:  # each crop straddles the square's outline: inside and outside pixels
        shown = {tuple(p) for p in ax.images[0].get_array().reshape(-1, 3)}
        assert (0, 0, 0) in shown and (RIGHT_COLOUR in shown or MISSED_COLOUR in shown)
    with pytest.raises(DataError, match="must match"):
        plot_refinement_crops(truth, before[:10], after)


def test_pointrend_crops_never_worse_with_an_exact_fine_map() -> None:
    truth = np.zeros((64, 96), bool)
    cv2.circle(truth.view(np.uint8), (40, 30), 17, 1, -1)
    fig = plot_pointrend_crops(truth, truth.astype(np.float32), 8, 512, n=2, side=16)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("bilinear x8: ") and titles[1].startswith("PointRend: ")
    assert fig._suptitle.get_text() == "grey right, red false positive, blue missed"
    titled = plot_pointrend_crops(truth, truth.astype(np.float32), 8, 512, n=1, side=16, title="disc")
    assert titled._suptitle.get_text() == "disc\ngrey right, red false positive, blue missed"
    wrong = [int(t.split(": ")[1].split(" px")[0]) for t in titles]
    assert all(after <= before for before, after in zip(wrong[::2], wrong[1::2])) and sum(wrong[::2]) > 0


def test_error_map_colours_right_false_positive_missed_and_band() -> None:
    image, truth, pred = _scene()
    pred[5:15, 5:10] = 0  # the disc's left half missed
    fig = plot_error_map(image, truth, pred, band=1, title="scene")
    axes = fig.axes
    assert len(axes) == 2 and [len(ax.images) for ax in axes] == [1, 1]
    assert axes[0].get_title() == "scene" and "1-px band" in axes[1].get_title()
    err = np.asarray(axes[1].images[0].get_array())
    assert tuple(err[10, 12]) == (40, 170, 40)  # disc found
    assert tuple(err[10, 7]) == MISSED_COLOUR  # disc missed
    assert tuple(err[30, 20]) == FALSE_POSITIVE_COLOUR  # rod painted as disc
    assert tuple(err[4, 10]) == (90, 90, 90)  # background, 1 px above the disc's top contour
    assert tuple(err[22, 30]) == (0, 0, 0)  # background far from any contour
    assert not err[0].any()  # ignored row: nowhere


def test_error_map_refuses_mismatched_shapes() -> None:
    image, truth, pred = _scene()
    with pytest.raises(DataError, match="must match"):
        plot_error_map(image, truth, pred[:-1])

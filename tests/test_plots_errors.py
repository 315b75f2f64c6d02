"""The error gallery of lesson 2.4 renders in a notebook: figures from labkit.viz.new_figure get
IPython's PNG formatter, and the gallery's crops show the prediction and the ground truth."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import pytest

from labkit.data.coco import coco_to_dataset
from labkit.detect.diagnose import GT_COLOUR, PRED_COLOUR, plot_error_gallery
from labkit.metrics.errors import analyze_errors, error_gallery
from labkit.viz import new_figure

IPython = pytest.importorskip("IPython")


@pytest.fixture
def shell():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    yield shell
    InteractiveShell.clear_instance()


def _png_of(shell, fig) -> bytes | None:
    data, _ = shell.display_formatter.format(fig)
    png = data.get("image/png")
    return None if png is None else (base64.b64decode(png) if isinstance(png, str) else png)


def test_new_figure_renders_as_png_in_ipython(shell) -> None:
    png_formatter = shell.display_formatter.formatters["image/png"]
    png_formatter.type_printers.clear()  # as in a kernel before pyplot has drawn anything
    png_formatter.deferred_printers.clear()
    fig = new_figure(2, 1, dpi=50)
    ax = fig.subplots()
    ax.imshow(np.zeros((4, 4, 3), np.uint8))
    png = _png_of(shell, fig)
    assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert decoded is not None and decoded.shape[2] == 3


def test_new_figure_outside_ipython_has_its_canvas() -> None:
    fig = new_figure(3, 2, dpi=40)
    fig.canvas.draw()
    assert fig.canvas.buffer_rgba().shape == (80, 120, 4)


def _scene(tmp_path):
    """A 200 x 200 image: one object found twice (a duplicate), one missed, one background error."""
    image = np.full((200, 200, 3), 90, np.uint8)
    cv2.imwrite(str(tmp_path / "1.png"), image)
    boxes = [[10, 10, 40, 40], [150, 150, 30, 30]]
    gt = {"images": [{"id": 1, "file_name": "1.png", "width": 200, "height": 200}],
          "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b, "area": b[2] * b[3],
                           "iscrowd": 0} for i, b in enumerate(boxes)],
          "categories": [{"id": 1, "name": "cone"}]}
    preds = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 40], "score": 0.9},
             {"image_id": 1, "category_id": 1, "bbox": [13, 10, 40, 40], "score": 0.8},
             {"image_id": 1, "category_id": 1, "bbox": [80, 80, 10, 10], "score": 0.4}]
    return coco_to_dataset(gt, root=tmp_path), gt, preds


def test_gallery_rows_titles_and_colours(tmp_path, shell) -> None:
    ds, gt, preds = _scene(tmp_path)
    gallery = error_gallery(analyze_errors(gt, preds), per_type=2)
    assert {k: len(v) for k, v in gallery.items() if v} == {"dupe": 1, "bkg": 1, "miss": 1}
    fig = plot_error_gallery(ds, gallery)
    assert len(fig.axes) == 3
    assert [ax.get_ylabel() for ax in fig.axes] == ["duplicate", "background", "missed ground truth"]
    # duplicate: IoU of [13,10,40,40] with [10,10,40,40] = 37*40 / (2*1600 - 37*40) = 1480 / 1720
    assert fig.axes[0].get_title() == "cone 0.8\nvs cone, IoU 0.86"
    assert fig.axes[1].get_title() == "cone 0.4"
    assert fig.axes[2].get_title() == "cone"
    assert fig._suptitle.get_text() == "red: prediction, green: ground truth"
    colours = [{tuple(c) for c in ax.images[0].get_array().reshape(-1, 3)} for ax in fig.axes]
    assert PRED_COLOUR in colours[0] and GT_COLOUR in colours[0]       # duplicate: both boxes
    assert PRED_COLOUR in colours[1] and GT_COLOUR not in colours[1]   # background: prediction only
    assert GT_COLOUR in colours[2] and PRED_COLOUR not in colours[2]   # missed: ground truth only
    assert _png_of(shell, fig) is not None

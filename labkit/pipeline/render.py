"""The renderer: overlays (boxes, masks, class names, track ids) drawn on the frames and
written as an H.264 MP4 through the ffmpeg binary that ``imageio-ffmpeg`` ships.

:func:`render_predictions` needs only ``predictions.jsonl``: each record names its frame's
pixels (``source``), its class names and its objects, so the demo video can be regenerated
without any model (``labkit render``).
"""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from labkit.errors import DataError
from labkit.pipeline.loader import read_frame
from labkit.pipeline.records import iter_jsonl, record_to_detections


def draw_record(image: np.ndarray, record: Mapping[str, Any], *, show_masks: bool = True,
                show_ids: bool = True) -> np.ndarray:
    """The frame with the record's objects drawn (:func:`labkit.viz.draw_detections`)."""
    from labkit.viz import draw_detections

    if image.shape[:2] != (record["height"], record["width"]):
        raise DataError(f"frame is {image.shape[1]}x{image.shape[0]} but the record says "
                        f"{record['width']}x{record['height']}", source=record["source"])
    names = {o["class_id"]: o["class_name"] for o in record["objects"]}
    return draw_detections(image, record_to_detections(record), names, show_masks=show_masks, show_ids=show_ids)


class VideoWriter:
    """H.264 (yuv420p) MP4 writer; odd frame sizes are padded by one black row/column because
    4:2:0 chroma needs even sizes. Use as a context manager."""

    def __init__(self, path: str | Path, fps: float):
        self.path = Path(path)
        self.fps = float(fps)
        self._gen = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def __enter__(self) -> "VideoWriter":
        return self

    def write(self, frame_rgb: np.ndarray) -> None:
        import imageio_ffmpeg

        h, w = frame_rgb.shape[:2]
        if self._gen is None:
            self._size = (w, h)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._gen = imageio_ffmpeg.write_frames(
                str(self.path), (w + w % 2, h + h % 2), fps=self.fps, codec="libx264", pix_fmt_out="yuv420p",
                macro_block_size=1, quality=None, output_params=["-crf", "23", "-threads", "1"],
                ffmpeg_log_level="error")
            self._gen.send(None)
        elif (w, h) != self._size:
            raise DataError(f"frame {self.frames + 1} is {w}x{h}, the video is {self._size[0]}x{self._size[1]}",
                            source=str(self.path))
        if w % 2 or h % 2:
            frame_rgb = np.pad(frame_rgb, ((0, h % 2), (0, w % 2), (0, 0)))
        self._gen.send(np.ascontiguousarray(frame_rgb, dtype=np.uint8))
        self.frames += 1

    def close(self) -> None:
        if self._gen is not None:
            self._gen.close()
            self._gen = None

    def __exit__(self, *exc: object) -> None:
        self.close()


def render_predictions(predictions: str | Path, out_path: str | Path, *, fps: float | None = None,
                       show_masks: bool = True, show_ids: bool = True) -> dict[str, Any]:
    """Write the demo video of a ``predictions.jsonl``; the frame rate defaults to the one the
    timestamps imply (25 when there is a single frame). Returns ``{video, frames, fps}``."""
    head = list(islice(iter_jsonl(predictions), 2))
    if not head:
        raise DataError("no records to render", source=str(predictions))
    if fps is None:
        step = head[1]["timestamp_s"] - head[0]["timestamp_s"] if len(head) == 2 else 0.0
        fps = round(1.0 / step, 6) if step > 0 else 25.0
    with VideoWriter(out_path, fps) as writer:
        for record in iter_jsonl(predictions):
            writer.write(draw_record(read_frame(record["source"]), record, show_masks=show_masks, show_ids=show_ids))
    return {"video": str(out_path), "frames": writer.frames, "fps": fps}

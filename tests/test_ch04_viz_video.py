"""labkit.viz.video_html: an MP4 embedded as an HTML5 video (used by the Chapter 4 lessons)."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from labkit.errors import DataError
from labkit.viz import MAX_INLINE_VIDEO, video_html


def _mp4(path, frames: int = 3):
    import imageio.v2 as imageio

    with imageio.get_writer(str(path), fps=5, codec="libx264", macro_block_size=1, ffmpeg_log_level="error") as w:
        for k in range(frames):
            w.append_data(np.full((16, 16, 3), 40 * k, dtype=np.uint8))
    return path


def test_embeds_the_file_bytes_in_a_video_element(tmp_path):
    path = _mp4(tmp_path / "v.mp4")
    html = video_html(path, width=320)
    match = re.fullmatch(r'<video controls width="320" src="data:video/mp4;base64,([A-Za-z0-9+/=]+)"></video>', html)
    assert match and base64.b64decode(match.group(1)) == path.read_bytes()


@pytest.mark.parametrize("name, problem", [("missing.mp4", "not found"), ("clip.avi", "only MP4")])
def test_bad_targets_name_the_file(tmp_path, name, problem):
    if name.endswith(".avi"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(DataError, match=problem) as info:
        video_html(tmp_path / name)
    assert name in str(info.value)


def test_a_file_above_the_limit_is_refused(tmp_path):
    path = tmp_path / "big.mp4"
    with path.open("wb") as f:
        f.truncate(MAX_INLINE_VIDEO + 1)  # sparse: no real bytes written
    with pytest.raises(DataError, match="limit"):
        video_html(path)
    with path.open("r+b") as f:
        f.truncate(MAX_INLINE_VIDEO)  # exactly at the limit is embedded
    assert video_html(path).startswith("<video")

"""The browser demo of the capstone pipeline (a Streamlit script; start it with ``labkit demo``).

Pick an input (an embedded example, an uploaded image or short video, or the camera where the
browser allows it), press **Run**: the page shows the overlays (boxes, masks, class names and,
on video, track ids), the objects per class and the time each stage took. It runs the same
:class:`labkit.pipeline.run.Pipeline` as ``labkit run`` and ``labkit serve``.

Streamlit runs this file top to bottom on every interaction; the pipeline is loaded once
(``st.cache_resource``). The config path comes from ``$LABKIT_DEMO_CONFIG`` (set by ``labkit
demo``), default ``configs/capstone.yaml``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import streamlit as st

from labkit.pipeline.config import load_config
from labkit.pipeline.loader import Frame, iter_source, open_source
from labkit.pipeline.render import VideoWriter, draw_record

EXAMPLE_FRAMES = 30  # frames of the example sequence shown as a video
CONFIG_ENV = "LABKIT_DEMO_CONFIG"


@st.cache_resource
def pipeline(config: str):
    from labkit.pipeline.run import Pipeline

    return Pipeline(load_config(config))


def examples() -> dict[str, Path]:
    """Embedded examples that exist on this machine: one frame and a short clip of seq07."""
    from labkit.data.synth import default_root

    seq = default_root() / "sequences" / "test" / "seq07"
    found = {}
    if (seq / "img1" / "000001.jpg").is_file():
        found["embedded frame (seq07, frame 1)"] = seq / "img1" / "000001.jpg"
        found[f"embedded clip (seq07, {EXAMPLE_FRAMES} frames)"] = seq
    return found


def counts_table(records: list[dict]) -> list[dict]:
    per_class = Counter(o["class_name"] for r in records for o in r["objects"])
    return [{"class": k, "objects": v} for k, v in sorted(per_class.items())]


def run_image(pipe, image: np.ndarray) -> None:
    start = time.perf_counter()
    record = pipe.process([Frame(1, 0.0, "demo", image)])[0]
    ms = 1000 * (time.perf_counter() - start)
    st.image(draw_record(image, record), caption=f"overlay: {len(record['objects'])} objects", width=640)
    st.write(f"**{len(record['objects'])} objects** in {ms:.0f} ms (detector and segmenter)")
    st.table(counts_table([record]))


def run_video(pipe, source: Path, max_frames: int) -> None:
    src = open_source(source)
    tracker = pipe.new_tracker()
    timings: dict[str, list[float]] = {s: [] for s in ("detect", "segment", "track", "export")}
    records = []
    out = Path(tempfile.mkdtemp(prefix="labkit-demo-")) / "demo.mp4"
    bar = st.progress(0.0, text="running the pipeline")
    with VideoWriter(out, src.fps) as video:
        for frame in iter_source(src, max_frames):
            record = pipe.process([frame], timings, tracker=tracker)[0]
            video.write(draw_record(frame.image, record))
            records.append(record)
            bar.progress(len(records) / max_frames, text=f"frame {len(records)}")
    bar.empty()
    st.video(str(out))
    tracks = {o["track_id"] for r in records for o in r["objects"] if o["track_id"] is not None}
    st.write(f"**{len(records)} frames**, {sum(len(r['objects']) for r in records)} objects, {len(tracks)} track ids")
    st.table(counts_table(records))
    st.table([{"stage": k, "p50 ms": 1000 * float(np.median(v)), "p95 ms": 1000 * float(np.percentile(v, 95))}
              for k, v in timings.items() if v])


def main(config: str) -> None:
    from labkit.data.images import to_rgb_array

    st.set_page_config(page_title="labkit capstone demo", layout="wide")
    st.title("Capstone pipeline demo")
    pipe = pipeline(config)
    models = pipe.models()
    st.caption(" | ".join(f"{role}: {m['name']} ({m['sha256'][:12]})" for role, m in models.items() if "sha256" in m))
    choices = list(examples()) + ["upload an image or video", "camera"]
    choice = st.radio("Input", choices, index=0)
    upload = st.file_uploader("Image or short video", type=["png", "jpg", "jpeg", "mp4", "avi"]) \
        if choice == "upload an image or video" else None
    shot = st.camera_input("Camera") if choice == "camera" else None
    max_frames = st.slider("Frames of a video", 5, 150, EXAMPLE_FRAMES)
    if not st.button("Run", type="primary"):
        return
    if choice in examples():
        path = examples()[choice]
        if path.is_dir():
            run_video(pipe, path, max_frames)
        else:
            from labkit.data.images import load_image

            run_image(pipe, load_image(path))
    elif upload is not None and upload.name.lower().endswith((".mp4", ".avi")):
        video = Path(tempfile.mkdtemp(prefix="labkit-upload-")) / Path(upload.name).name
        video.write_bytes(upload.getvalue())
        run_video(pipe, video, max_frames)
    elif upload is not None or shot is not None:
        from PIL import Image

        run_image(pipe, to_rgb_array(Image.open(upload or shot), source="upload"))
    else:
        st.warning("Choose a file (or take a picture) first.")


if __name__ == "__main__":
    main(os.environ.get(CONFIG_ENV) or str(Path(__file__).resolve().parents[2] / "configs" / "capstone.yaml"))

"""``labkit serve`` for real: a server process on a loopback port, spoken to over HTTP."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import yaml
from pipeline_models import tiny_config

import labkit.cli
from labkit.pipeline.config import load_config
from labkit.pipeline.loader import Frame
from labkit.pipeline.records import validate_record
from labkit.repro import sha256_file

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
from labkit.serve.process import ServerProcess  # noqa: E402

H, W = 240, 320


def _png(h: int = H, w: int = W, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 3)
    return cv2.imencode(".png", img)[1].tobytes()


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # min_hits 1: a track is confirmed (and output) on its first frame; thresholds under the untrained scores
    return tiny_config(tmp_path_factory.mktemp("serve_models"),
                       tracker={"min_hits": 1, "high_score": 0.001, "low_score": 0.0, "new_track_score": 0.001})


@pytest.fixture(scope="module")
def server(config: Path, tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    log = tmp_path_factory.mktemp("serve_log") / "server.log"
    with ServerProcess(config, log=log) as running:
        yield running


def _good(server: ServerProcess) -> None:
    r = httpx.post(server.url + "/v1/detect", content=_png(), headers={"content-type": "image/png"}, timeout=60)
    assert r.status_code == 200


def test_health_and_openapi(server: ServerProcess, config: Path) -> None:
    health = httpx.get(server.url + "/healthz").json()
    weights = yaml.safe_load(config.read_text())
    assert health["status"] == "ok"
    assert health["models"]["detector"] == {"name": "detect-tiny", "sha256": sha256_file(weights["detector"]["weights"])}
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    assert {"/v1/detect", "/v1/segment", "/healthz", "/metrics"} <= set(paths)
    assert "multipart/form-data" in paths["/v1/detect"]["post"]["requestBody"]["content"]
    assert httpx.get(server.url + "/docs").status_code == 200


def test_detect_answers_a_frame_record_the_same_for_multipart_and_raw_bodies(server: ServerProcess) -> None:
    png = _png()
    multipart = httpx.post(server.url + "/v1/detect", files={"file": ("x.png", png, "image/png")}, timeout=60)
    raw = httpx.post(server.url + "/v1/detect", content=png, headers={"content-type": "image/png"}, timeout=60)
    assert multipart.status_code == raw.status_code == 200
    a, b = multipart.json(), raw.json()
    assert a == b and a["models"]["detector"]["name"] == "detect-tiny" and "segmenter" not in a["models"]
    a.pop("models")
    validate_record(a, source="response")
    assert (a["width"], a["height"]) == (W, H) and a["objects"]
    assert all(o["mask"] is None for o in a["objects"])


def test_segment_gives_the_numbers_of_the_pipeline(server: ServerProcess, config: Path) -> None:
    """The service and `labkit run` share the stages: the same image, the same record."""
    from labkit.pipeline.run import Pipeline

    png = _png(seed=3)
    r = httpx.post(server.url + "/v1/segment", files={"file": ("x.png", png, "image/png")}, timeout=60)
    assert r.status_code == 200
    answer = r.json()
    assert set(answer.pop("models")) == {"detector", "segmenter"}
    image = cv2.cvtColor(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    expected = Pipeline(load_config(config)).process([Frame(1, 0.0, "upload", image)])[0]
    assert answer == expected
    assert all(o["mask"]["size"] == [H, W] for o in answer["objects"])


@pytest.mark.parametrize("kwargs, status, message", [
    ({"content": b"hello", "headers": {"content-type": "text/plain"}}, 415, "content type 'text/plain'"),
    ({"content": b"", "headers": {}}, 415, "content type '(none)'"),
    ({"content": b"hello, not pixels", "headers": {"content-type": "image/png"}}, 400, "not an image"),
    ({"content": _png()[:3000], "headers": {"content-type": "image/png"}}, 400, "truncated"),
    ({"files": {"upload": ("x.png", _png(), "image/png")}}, 400, "without a 'file' field"),
    ({"content": _png(1001, 1000), "headers": {"content-type": "image/png"}}, 413, "1001000 pixels"),
    ({"content": b"\0" * 2_000_001, "headers": {"content-type": "image/jpeg"}}, 413, "2000000 bytes"),
    ({"files": {"file": ("x.png", b"\0" * 2_100_000, "image/png")}}, 413, "2000000 bytes"),
])
def test_bad_input_gets_a_json_error_and_the_server_keeps_serving(server: ServerProcess, kwargs: dict, status: int,
                                                                  message: str) -> None:
    r = httpx.post(server.url + "/v1/detect", timeout=60, **kwargs)
    assert r.status_code == status
    assert r.json()["error"]["status"] == status and message in r.json()["error"]["message"]
    _good(server)


def test_oversized_body_without_content_length_is_cut_off(server: ServerProcess) -> None:
    def chunks():
        for _ in range(40):
            yield b"\0" * 100_000  # 4 MB in total, streamed (chunked transfer, no Content-Length)

    r = httpx.post(server.url + "/v1/detect", content=chunks(), headers={"content-type": "image/png"}, timeout=60)
    assert r.status_code == 413
    _good(server)


def test_unknown_endpoint_and_method(server: ServerProcess) -> None:
    r = httpx.post(server.url + "/v2/detect", content=_png(), headers={"content-type": "image/png"})
    assert r.status_code == 404 and "no such endpoint" in r.json()["error"]["message"]
    r = httpx.get(server.url + "/v1/detect")
    assert r.status_code == 405 and r.json()["error"]["status"] == 405


def _sample(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if m and ",".join(sorted(m.group(1).split(","))) == want:
            return float(m.group(2))
    return 0.0


def test_metrics_count_requests_errors_and_latency(server: ServerProcess) -> None:
    before = httpx.get(server.url + "/metrics").text
    _good(server)
    _good(server)
    httpx.post(server.url + "/v1/detect", content=b"x", headers={"content-type": "text/plain"})
    after = httpx.get(server.url + "/metrics").text
    ok = dict(endpoint="/v1/detect", status="200")
    bad = dict(endpoint="/v1/detect", status="415")
    assert _sample(after, "labkit_requests_total", **ok) - _sample(before, "labkit_requests_total", **ok) == 2
    assert _sample(after, "labkit_errors_total", **bad) - _sample(before, "labkit_errors_total", **bad) == 1
    assert _sample(after, "labkit_errors_total", **ok) == 0
    count = "labkit_request_latency_seconds_count"
    assert _sample(after, count, endpoint="/v1/detect") - _sample(before, count, endpoint="/v1/detect") == 3
    assert 'labkit_request_latency_seconds_bucket{endpoint="/v1/detect",le="0.1"}' in after


def test_serve_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert labkit.cli.main(["serve", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "config not found" in capsys.readouterr().err


def test_tracking_session_keeps_identities_and_order(server: ServerProcess) -> None:
    opened = httpx.post(server.url + "/v1/track")
    assert opened.status_code == 201
    sid = opened.json()["session"]
    url = f"{server.url}/v1/track/{sid}"
    png, headers = _png(seed=5), {"content-type": "image/png"}
    first = httpx.post(url, content=png, headers=headers, timeout=60).json()
    second = httpx.post(url, params={"frame": 2}, content=png, headers=headers, timeout=60).json()
    assert (first["frame_id"], second["frame_id"]) == (1, 2)
    ids1 = sorted(o["track_id"] for o in first["objects"] if o["track_id"] is not None)
    ids2 = sorted(o["track_id"] for o in second["objects"] if o["track_id"] is not None)
    assert ids1 and ids1 == ids2  # the same image twice: every track continues under its id
    assert {o["track_state"] for o in second["objects"] if o["track_id"] is not None} == {"confirmed"}
    validate_record({k: v for k, v in second.items() if k != "models"}, source="response")
    r = httpx.post(url, params={"frame": 5}, content=png, headers=headers, timeout=60)
    assert r.status_code == 409 and "expects frame 3" in r.json()["error"]["message"]
    assert httpx.post(url, params={"frame": 3}, content=png, headers=headers, timeout=60).json()["frame_id"] == 3
    other = httpx.post(server.url + "/v1/track").json()["session"]
    assert other != sid
    assert httpx.post(f"{server.url}/v1/track/{other}", content=png, headers=headers, timeout=60).json()["frame_id"] == 1
    assert httpx.delete(url).status_code == 200
    for method in (httpx.post, httpx.delete):
        r = method(url, **({"content": png, "headers": headers} if method is httpx.post else {}))
        assert r.status_code == 404 and "unknown or expired tracking session" in r.json()["error"]["message"]
    metrics = httpx.get(server.url + "/metrics").text
    assert _sample(metrics, "labkit_errors_total", endpoint="/v1/track/{session}", status="409") == 1


def test_sessions_expire_when_idle_and_are_bounded() -> None:
    from labkit.serve.sessions import Sessions

    now = [0.0]
    sessions = Sessions(lambda: object(), ttl_s=10, max_sessions=2, clock=lambda: now[0])
    a = sessions.create()
    now[0] = 10.0
    assert sessions.get(a) is not None  # idle exactly ttl_s: still alive, and its idle clock restarts
    b = sessions.create()
    assert sessions.create() is None and len(sessions) == 2  # bounded
    now[0] = 15.0
    assert sessions.get(b) is not None
    now[0] = 20.5
    assert sessions.get(a) is None  # idle 10.5 s > 10 s: expired
    assert sessions.get(b) is not None  # idle 5.5 s
    assert sessions.create() is not None and len(sessions) == 2
    assert sessions.delete(b) and not sessions.delete(b)

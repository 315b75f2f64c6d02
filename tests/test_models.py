"""The model registry (labkit.models): list / build / load / verify, the one metrics.json layout,
shipped checkpoints pulled from a folder mirror and from a loopback HTTP server (good, corrupted and
truncated files, resumed downloads), clear errors for bad input, and reproducible builds."""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
from pathlib import Path
from typing import Iterator

import pytest
import torch

from labkit import models
from labkit.cli import main
from labkit.datasets.fetch import DownloadError
from labkit.errors import DataError
from labkit.models import checkpoints
from labkit.models.specs import COURSE_MODELS
from labkit.repro import sha256_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data_root() -> Path:
    from labkit.data.synth import ensure_dataset

    return Path(ensure_dataset(size="small", seed=0))


@pytest.fixture(scope="module")
def built(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> models.Model:
    """The seconds-long U-Net, built once for the module."""
    return models.build("segment-tiny", data_root=data_root, cache_root=tmp_path_factory.mktemp("models"),
                        progress=False)


@pytest.fixture
def release(built: models.Model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """``built`` shipped into a mirror folder, with its own manifest; an empty committed-checkpoint
    folder and an empty labkit cache, so that only a pull can provide the files."""
    manifest = tmp_path / "checkpoints.json"
    entry = checkpoints.ship(built.weights, tmp_path / "mirror", manifest=manifest, half="never")
    monkeypatch.setattr(checkpoints, "MANIFEST", manifest)
    monkeypatch.setattr(checkpoints, "PACKAGED", tmp_path / "packaged")
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LABKIT_MODELS_MIRROR", str(tmp_path / "mirror"))
    return {"entry": entry, "mirror": tmp_path / "mirror" / "segment-tiny", "manifest": manifest,
            "pulled": tmp_path / "cache" / "models" / "segment-tiny"}


# ----------------------------------------------------------------------------- registry and layout
def test_registry_lists_the_course_models_and_names_the_known_ones_for_a_typo():
    names = models.names()
    assert {"detect-base", "detect-frcnn", "segment-base", "segment-instance"} <= set(names)
    for name in ("detect-base", "detect-frcnn", "segment-base", "segment-instance"):
        spec = models.get(name)
        assert spec.ci in names and models.get(spec.ci).ci is None  # every base model has a tiny variant
    with pytest.raises(DataError, match="unknown model 'detect-bsae'; known models: detect-base, "):
        models.get("detect-bsae")


def test_configs_are_found_through_the_package():
    path = models.config_path("detect_base.yaml")
    assert path.is_file() and path.parent.name == "configs" and path.parent.parent.name == "labkit"
    with pytest.raises(DataError, match="no course config"):
        models.config_path("nope.yaml")


def test_cli_list_and_usage_errors(capsys: pytest.CaptureFixture):
    assert main(["models", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == models.names()
    assert main(["models", "verify", "no-such-model"]) == 2
    assert "known models: detect-base" in capsys.readouterr().err
    assert main(["models", "build"]) == 2  # no name and no --all


def test_cli_load_follows_the_budget_and_verify_catches_tampered_weights(data_root: Path, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture):
    monkeypatch.setenv("LABKIT_ARTIFACTS", str(tmp_path))
    monkeypatch.setenv("LABKIT_BUDGET", "ci")
    capsys.readouterr()
    assert main(["models", "load", "segment-base", "--data-root", str(data_root), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["name"] == "segment-tiny" and row["source"] == "built"  # the tiny variant under the ci budget
    assert Path(row["weights"]).is_relative_to(tmp_path / "models")
    assert main(["models", "verify", "segment-tiny", "--data-root", str(data_root)]) == 0
    weights = Path(row["weights"])
    weights.write_bytes(weights.read_bytes() + b"\0")
    assert main(["models", "verify", "segment-tiny", "--data-root", str(data_root)]) == 1
    assert "sha256 differs from its metrics.json" in capsys.readouterr().out


def test_metrics_json_has_one_layout(built: models.Model):
    info = built.info
    for key in ("model", "config_name", "key", "weights", "weights_sha256", "files", "epochs", "steps",
                "train_minutes", "build_minutes", "device", "metrics", "details", "config", "dataset", "versions"):
        assert key in info, key
    assert info["model"] == "segment-tiny" and info["weights"] == "weights.pt" == built.weights.name
    assert built.config.to_dict() == info["config"] and built.metrics == info["metrics"]


def test_corrupt_or_foreign_metrics_json_names_the_file(tmp_path: Path):
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"x")
    (tmp_path / "metrics.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="metrics.json.*not a readable metrics.json") as info:
        models.read_info(weights)
    assert str(tmp_path / "metrics.json") in str(info.value)
    (tmp_path / "metrics.json").write_text('{"val_miou": 0.5}', encoding="utf-8")
    with pytest.raises(DataError, match=r"lacks \['model', 'weights', 'epochs'"):
        models.read_info(weights)


def test_a_broken_manifest_names_the_file(tmp_path: Path):
    path = tmp_path / "checkpoints.json"
    path.write_text('{"models": {"x": {"files": {"w.pt": {"size": 3}}}}}')
    with pytest.raises(DataError, match="not a checkpoint manifest") as info:
        checkpoints.read_manifest(path)
    assert str(path) in str(info.value)


# ----------------------------------------------------------------------------- shipped checkpoints
def test_pull_from_a_folder_mirror_then_load_uses_the_shipped_checkpoint(release: dict, built: models.Model,
                                                                         data_root: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture):
    entry = release["entry"]
    assert set(entry["files"]) == {"weights.pt", "metrics.json"}
    assert entry["files"]["weights.pt"] == {"size": built.weights.stat().st_size, "sha256": sha256_file(built.weights)}
    folder = checkpoints.pull("segment-tiny", progress=False)
    assert folder == release["pulled"] and checkpoints.verify(folder, entry) == []
    # an empty cache root: nothing built there, so load returns the verified shipped copy without training
    model = models.load("segment-tiny", data_root=data_root, cache_root=tmp_path / "empty", follow_budget=False)
    assert model.source == "shipped" and model.weights == folder / "weights.pt"
    assert model.info == {**built.info, "built_weights_sha256": built.info["weights_sha256"]}
    assert not (tmp_path / "empty").exists()
    assert main(["models", "verify", "segment-tiny", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["shipped"] == str(folder)


def test_load_pulls_on_demand_and_ignores_a_checkpoint_of_another_config(release: dict, data_root: Path,
                                                                         tmp_path: Path):
    model = models.load("segment-tiny", data_root=data_root, cache_root=tmp_path / "empty", follow_budget=False)
    assert model.source == "shipped" and model.folder == release["pulled"]  # pulled by load itself
    manifest = json.loads(release["manifest"].read_text())
    manifest["models"]["segment-tiny"]["key"] = "another-config"
    release["manifest"].write_text(json.dumps(manifest))
    rebuilt = models.load("segment-tiny", data_root=data_root, cache_root=tmp_path / "cache2", follow_budget=False,
                          progress=False)
    assert rebuilt.source == "built" and rebuilt.folder.parent == tmp_path / "cache2"


def test_a_corrupted_mirror_file_is_rejected_and_deleted(release: dict, capsys: pytest.CaptureFixture):
    weights = release["mirror"] / "weights.pt"
    data = bytearray(weights.read_bytes())
    data[100] ^= 0xFF  # same size, one flipped byte
    weights.write_bytes(bytes(data))
    with pytest.raises(DownloadError, match="checksum mismatch"):
        checkpoints.pull("segment-tiny", progress=False)
    assert not (release["pulled"] / "weights.pt").exists()
    assert not (release["pulled"] / "weights.pt.part").exists()
    assert main(["models", "pull", "segment-tiny"]) == 1
    assert "checksum mismatch" in capsys.readouterr().out


def test_verify_finds_a_damaged_pulled_copy(release: dict, capsys: pytest.CaptureFixture):
    folder = checkpoints.pull("segment-tiny", progress=False)
    (folder / "weights.pt").write_bytes((folder / "weights.pt").read_bytes()[:-10])  # truncated on disk
    assert main(["models", "verify", "segment-tiny"]) == 1
    assert "bytes, the manifest says" in capsys.readouterr().out


class _Release(http.server.BaseHTTPRequestHandler):
    """Serves ``files`` (name -> bytes) with HTTP Range support; ``cut`` (name -> n) sends the full
    Content-Length but only the first ``n`` bytes, then drops the connection (an interrupted download)."""

    files: dict[str, bytes] = {}
    cut: dict[str, int] = {}
    ranges: list[str | None] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        name = self.path.lstrip("/")
        if name not in self.files:
            self.send_error(404)
            return
        body, start = self.files[name], 0
        header = self.headers.get("Range")
        type(self).ranges.append(header)
        if header:
            start = int(header.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if name in self.cut:
            payload = payload[:self.cut[name]]
            self.close_connection = True
        self.wfile.write(payload)
        self.wfile.flush()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(release: dict, monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Release]]:
    handler = type("Handler", (_Release,), {"files": {}, "cut": {}, "ranges": []})
    for path in release["mirror"].iterdir():
        handler.files[f"segment-tiny/{path.name}"] = path.read_bytes()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("LABKIT_MODELS_MIRROR", f"http://127.0.0.1:{httpd.server_address[1]}/")
    yield handler
    httpd.shutdown()
    httpd.server_close()


def test_pull_over_http_resumes_a_truncated_download(server: type[_Release], release: dict):
    size = release["entry"]["files"]["weights.pt"]["size"]
    server.cut["segment-tiny/weights.pt"] = size // 3
    with pytest.raises(DownloadError, match="run again to resume"):
        checkpoints.pull("segment-tiny", progress=False)
    part = release["pulled"] / "weights.pt.part"
    assert part.stat().st_size == size // 3 and not (release["pulled"] / "weights.pt").exists()
    server.cut.clear()
    server.ranges.clear()
    folder = checkpoints.pull("segment-tiny", progress=False)
    assert f"bytes={size // 3}-" in server.ranges  # the second try asked only for the missing bytes
    assert checkpoints.verify(folder, release["entry"]) == [] and not part.exists()


def test_pull_over_http_rejects_a_corrupted_file(server: type[_Release], release: dict):
    body = bytearray(server.files["segment-tiny/weights.pt"])
    body[-1] ^= 0xFF
    server.files["segment-tiny/weights.pt"] = bytes(body)
    with pytest.raises(DownloadError, match="checksum mismatch"):
        checkpoints.pull("segment-tiny", progress=False)
    assert not (release["pulled"] / "weights.pt").exists()


def test_shipping_in_fp16_is_measured_and_kept_only_when_it_loses_nothing(built: models.Model, data_root: Path,
                                                                          tmp_path: Path):
    manifest = tmp_path / "checkpoints.json"
    entry = checkpoints.ship(built.weights, tmp_path / "out", manifest=manifest, half="auto", tolerance=1e-3,
                             data_root=data_root)
    shipped = json.loads((tmp_path / "out" / "segment-tiny" / "metrics.json").read_text())
    precision = shipped["precision"]
    # every float32 weight stored in 2 bytes instead of 4: a bit over half the file (pickle overhead)
    assert precision["fp16_bytes"] < 0.6 * precision["fp32_bytes"]
    assert precision["max_abs_change"] == max(abs(precision["fp16_metrics"][k] - v)
                                              for k, v in precision["fp32_metrics"].items())
    kept_half = precision["max_abs_change"] <= 1e-3
    assert entry["precision"] == ("fp16" if kept_half else "fp32") == precision["dtype"]
    weights = tmp_path / "out" / "segment-tiny" / "weights.pt"
    assert shipped["weights_sha256"] == sha256_file(weights) == entry["files"]["weights.pt"]["sha256"]
    # the recorded metrics are those of the shipped file: evaluating it again gives them back
    spec = models.get("segment-tiny")
    again = spec.evaluate_fn()(weights, spec.load_config(), data_root, False).metrics
    assert again == pytest.approx(shipped["metrics"], abs=1e-9)
    with pytest.raises(DataError, match="metrics.json"):  # a build that never finished cannot be shipped
        checkpoints.ship(tmp_path / "nothing" / "weights.pt", tmp_path / "out", manifest=manifest)


def test_a_checkpoint_too_large_to_commit_is_refused_for_the_packaged_folder(built: models.Model, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch):
    size = built.weights.stat().st_size
    manifest = tmp_path / "checkpoints.json"
    monkeypatch.setattr(checkpoints, "PACKAGED_MAX_BYTES", size)  # the boundary: a file of exactly the limit is fine
    checkpoints.ship(built.weights, tmp_path / "packaged", manifest=manifest, packaged=True, half="never")
    monkeypatch.setattr(checkpoints, "PACKAGED_MAX_BYTES", size - 1)
    with pytest.raises(DataError, match="too large to commit"):
        checkpoints.ship(built.weights, tmp_path / "packaged2", manifest=manifest, packaged=True, half="never")
    assert not (tmp_path / "packaged2" / "segment-tiny").exists()
    assert set(checkpoints.read_manifest(manifest)) == {"segment-tiny"}  # the refused copy is not recorded
    # the release location has no such limit
    checkpoints.ship(built.weights, tmp_path / "release", manifest=manifest, half="never")


@pytest.mark.parametrize("name", COURSE_MODELS)
def test_a_fresh_checkout_loads_every_course_model_from_its_packaged_checkpoint(name: str, tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch):
    """What `make models` does on a fresh checkout, at the learners' (full) budget: no cache, nothing
    pulled, no network; each model the chapters need is the verified copy in the committed folder,
    so nothing is trained (``find`` never trains; ``load`` only trains when ``find`` finds nothing)."""
    monkeypatch.setenv("LABKIT_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LABKIT_BUDGET", "full")
    found = models.find(name, pull=False, progress=False)
    assert found is not None, f"no packaged checkpoint of {name} for this config and data: make models would train it"
    assert found.source == "shipped" and found.folder == checkpoints.PACKAGED / name
    assert checkpoints.read_manifest()[name]["packaged"] is True
    loaded = models.load(name, pull=False, progress=False)
    assert (loaded.source, loaded.weights) == ("shipped", found.weights)
    assert sha256_file(loaded.weights) == loaded.info["weights_sha256"]
    assert not (tmp_path / "artifacts").exists() or not any((tmp_path / "artifacts").rglob("*.pt"))


# ----------------------------------------------------------------------------- reproducible budgets
def _tensors(weights: Path) -> dict[str, torch.Tensor]:
    state = torch.load(weights, map_location="cpu", weights_only=False)
    model = state["model"]
    return model if isinstance(model, dict) else {k: v for k, v in model.state_dict().items()}


def _other_seed(cfg):
    if hasattr(cfg, "model") and not isinstance(cfg.model, str):  # BaseConfig: the seed is the U-Net's
        return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, seed=cfg.model.seed + 1))
    return cfg.replace(seed=cfg.seed + 1)


@pytest.mark.parametrize("name", ["detect-tiny", "segment-tiny"])
def test_same_config_seed_and_data_give_the_same_weights(name: str, data_root: Path, tmp_path: Path):
    """Two builds of the same epoch budget in two folders: every tensor equal (YOLO and U-Net paths);
    a build with another seed differs (so the comparison can fail)."""
    cfg = models.get(name).load_config()
    a = models.build(name, config=cfg, data_root=data_root, cache_root=tmp_path / "a", progress=False)
    b = models.build(name, config=cfg, data_root=data_root, cache_root=tmp_path / "b", progress=False)
    c = models.build(name, config=_other_seed(cfg), data_root=data_root, cache_root=tmp_path / "c", progress=False)
    ta, tb, tc = _tensors(a.weights), _tensors(b.weights), _tensors(c.weights)
    assert ta.keys() == tb.keys() == tc.keys() and len(ta) > 10
    assert [k for k in ta if not torch.equal(ta[k], tb[k])] == []
    assert any(not torch.equal(ta[k], tc[k]) for k in ta)
    assert (a.info["epochs"], a.info["steps"]) == (b.info["epochs"], b.info["steps"])


def test_shipped_ultralytics_checkpoints_name_no_machine_folder(tmp_path):
    import types

    import torch

    from labkit.models.checkpoints import _without_machine_paths

    model = types.SimpleNamespace(args={"data": "/home/builder/run/yolo/data.yaml", "imgsz": 320})
    path = tmp_path / "weights.pt"
    torch.save({"train_args": {"data": "/home/builder/run/yolo/data.yaml", "project": "/home/builder/run",
                               "name": "relative/kept", "epochs": 8},
                "model": model, "git": {"root": "/home/builder/course"}}, path)
    _without_machine_paths(path)
    checkpoint = torch.load(path, weights_only=False)
    assert checkpoint["train_args"] == {"data": "data.yaml", "project": "run", "name": "relative/kept", "epochs": 8}
    assert checkpoint["model"].args == {"data": "data.yaml", "imgsz": 320} and "git" not in checkpoint
    plain = tmp_path / "state.pt"
    torch.save({"conv.weight": torch.ones(2)}, plain)
    before = plain.read_bytes()
    _without_machine_paths(plain)
    assert plain.read_bytes() == before


def test_models_root_is_the_given_folder_else_artifacts_models(tmp_path: Path, monkeypatch):
    from labkit.models import models_root

    monkeypatch.setenv("LABKIT_ARTIFACTS", str(tmp_path / "art"))
    assert models_root() == tmp_path / "art" / "models"
    assert models_root(tmp_path / "c") == tmp_path / "c" and models_root(str(tmp_path)) == tmp_path

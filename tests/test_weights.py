"""Pretrained weights: local copies first, verified downloads through a mirror, a clear offline error."""

import pytest

from labkit.weights import PretrainedUnavailable, known, resolve_model, resolve_pretrained


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    monkeypatch.setenv("LABKIT_DATA_MIRROR", str(mirror))
    return mirror


def test_offline_without_fallback_is_a_clear_error():
    with pytest.raises(PretrainedUnavailable, match="not available offline.*yolov8n.pt.*pretrained=False"):
        resolve_pretrained("yolov8n.pt", progress=False)


def test_offline_with_fallback_warns_and_uses_it(tmp_path):
    built = tmp_path / "base.pt"
    with pytest.warns(UserWarning, match="Falling back to training from scratch"):
        assert resolve_pretrained("yolo11n.pt", fallback=lambda: built, progress=False) == built


def test_mirror_download_is_recorded_and_checked(isolated, tmp_path):
    (isolated / "yolov8n.pt").write_bytes(b"first copy")
    path = resolve_pretrained("yolov8n.pt", progress=False)
    assert path.read_bytes() == b"first copy" and resolve_pretrained("yolov8n.pt", progress=False) == path
    path.write_bytes(b"tampered")
    with pytest.raises(Exception, match="differs from the first copy"):
        resolve_pretrained("yolov8n.pt", progress=False)


def test_torchvision_hash_prefix_is_verified(isolated):
    import torchvision.models as tvm

    filename = tvm.ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    (isolated / filename).write_bytes(b"not the real weights")
    with pytest.raises(PretrainedUnavailable, match="does not start with"):
        resolve_pretrained("resnet18", progress=False)


def test_names_and_model_argument():
    assert "yolov8n.pt" in known() and "resnet18" in known()
    assert resolve_model("yolov8n.yaml") == "yolov8n.yaml"
    with pytest.raises(KeyError, match="known: yolov8n.pt"):
        resolve_pretrained("resnet9000")

"""The cached-model convention: weights plus a metrics.json written last mark a finished build."""

from pathlib import Path

import pytest

from labkit.artifacts import MODEL_METRICS, finished_model, read_model_metrics, write_json
from labkit.errors import DataError


def test_a_build_is_finished_only_with_its_weights_and_the_metrics_written_last(tmp_path: Path):
    weights = tmp_path / "weights.pt"
    assert not finished_model(weights)
    weights.write_bytes(b"w")  # interrupted after the weights were copied, before the metrics
    assert not finished_model(weights)
    write_json(tmp_path / MODEL_METRICS, {"val_miou": 0.5})
    assert finished_model(weights) and read_model_metrics(weights) == {"val_miou": 0.5}
    weights.unlink()  # metrics without weights: not a usable model either
    assert not finished_model(weights)


def test_reading_the_metrics_of_an_unfinished_model_names_the_weights(tmp_path: Path):
    with pytest.raises(DataError, match="not a finished cached model") as info:
        read_model_metrics(tmp_path / "best.pt")
    assert "best.pt" in str(info.value)


def test_fresh_dir_clears_only_folders_labkit_made(tmp_path: Path):
    from labkit.artifacts import fresh_dir

    made = tmp_path / "run"
    assert fresh_dir(made, marker="manifest.json", what="run") == made and made.is_dir()
    (made / "manifest.json").write_text("{}")
    (made / "old.csv").write_text("stale")
    assert list(fresh_dir(made, marker="manifest.json", what="run").iterdir()) == []
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not a run \\(no manifest.json\\)"):
        fresh_dir(tmp_path, marker="manifest.json", what="run")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_shown_path_names_project_and_artifacts_files_relatively_and_others_by_name(tmp_path, monkeypatch):
    from labkit.artifacts import project_root, shown_path

    monkeypatch.setenv("LABKIT_ARTIFACTS", str(tmp_path / "art"))
    assert shown_path(project_root() / "labkit" / "models" / "checkpoints.json") == "labkit/models/checkpoints.json"
    assert shown_path(tmp_path / "art" / "models" / "x" / "weights.pt") == "artifacts/models/x/weights.pt"
    assert shown_path(tmp_path / "elsewhere" / "default-seed0") == "default-seed0"  # never the machine's folder

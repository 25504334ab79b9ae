"""ProductionModel picks what serving loads (the newest complete version) and copies it into its artifact."""

from pathlib import Path

from tfx.types import standard_artifacts

from components import production_model


def _saved_model(folder: Path, weights: bytes) -> Path:
    (folder / "variables").mkdir(parents=True)
    (folder / production_model.SAVED_MODEL_FILE).write_bytes(b"graph")
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(weights)
    return folder


def _run_executor(tmp_path: Path, serving_dir: Path) -> standard_artifacts.Model:
    candidate = standard_artifacts.Model()
    candidate.uri = str(tmp_path / "trainer_model")
    _saved_model(tmp_path / "trainer_model" / "Format-Serving", b"candidate weights")
    baseline = standard_artifacts.Model()
    baseline.uri = str(tmp_path / "baseline_model")
    production_model.ProductionModelExecutor().Do(
        {"candidate_model": [candidate]},
        {"baseline_model": [baseline]},
        {"serving_model_dir": str(serving_dir), "production_cache_key": ""},
    )
    return baseline


def test_newest_complete_numbered_version_is_production(tmp_path):
    _saved_model(tmp_path / "100", b"old")
    _saved_model(tmp_path / "250", b"new")
    (tmp_path / "300").mkdir()  # a push still being written: no saved_model.pb yet
    _saved_model(tmp_path / "latest", b"not a version")
    assert production_model.pushed_versions(str(tmp_path)) == ["100", "250"]
    assert production_model.production_model_path(str(tmp_path)) == str(tmp_path / "250")


def test_no_serving_folder_means_nothing_in_production(tmp_path):
    assert production_model.production_model_path(str(tmp_path / "missing")) is None
    assert production_model.production_cache_key(str(tmp_path / "missing")) == ""


def test_fingerprint_follows_content_not_location(tmp_path):
    first = _saved_model(tmp_path / "1", b"weights")
    same = _saved_model(tmp_path / "2", b"weights")
    other = _saved_model(tmp_path / "3", b"other weights")
    assert production_model.model_fingerprint(str(first)) == production_model.model_fingerprint(str(same))
    assert production_model.model_fingerprint(str(first)) != production_model.model_fingerprint(str(other))


def test_baseline_is_a_copy_of_the_production_model(tmp_path):
    serving = tmp_path / "serving"
    _saved_model(serving / "100", b"old")
    _saved_model(serving / "200", b"production weights")
    baseline = _run_executor(tmp_path, serving)

    copied = Path(baseline.uri) / "Format-Serving"
    assert (copied / "variables" / "variables.data-00000-of-00001").read_bytes() == b"production weights"
    assert baseline.get_string_custom_property("baseline_source") == production_model.FROM_PRODUCTION
    assert baseline.get_string_custom_property("production_version") == "200"
    assert baseline.get_string_custom_property("model_fingerprint") == production_model.production_cache_key(
        str(serving)
    )


def test_without_production_the_candidate_is_its_own_baseline(tmp_path):
    baseline = _run_executor(tmp_path, tmp_path / "empty_serving")
    copied = Path(baseline.uri) / "Format-Serving"
    assert (copied / "variables" / "variables.data-00000-of-00001").read_bytes() == b"candidate weights"
    assert baseline.get_string_custom_property("baseline_source") == production_model.FROM_CANDIDATE
    assert baseline.get_string_custom_property("production_version") == ""


def test_the_serving_folder_is_read_when_the_executor_runs(tmp_path):
    serving = tmp_path / "serving"
    key_when_built = production_model.production_cache_key(str(serving))
    _saved_model(serving / "300", b"pushed after the pipeline was built")
    baseline = _run_executor(tmp_path, serving)
    assert key_when_built == ""
    assert baseline.get_string_custom_property("production_version") == "300"

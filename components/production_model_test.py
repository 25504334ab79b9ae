"""ProductionModel copies what serving loads (registry/versions.py: the newest complete version that was
not rolled back) into its artifact, or the candidate when nothing is in production."""

from pathlib import Path

from tfx.types import standard_artifacts

from components import production_model
from registry import versions
from tests.support.outputs import pushed_version, saved_model


def _run_executor(tmp_path: Path, serving_dir: Path) -> standard_artifacts.Model:
    candidate = standard_artifacts.Model()
    candidate.uri = str(tmp_path / "trainer_model")
    saved_model(tmp_path / "trainer_model" / "Format-Serving", b"candidate weights")
    baseline = standard_artifacts.Model()
    baseline.uri = str(tmp_path / "baseline_model")
    production_model.ProductionModelExecutor().Do(
        {"candidate_model": [candidate]},
        {"baseline_model": [baseline]},
        {"serving_model_dir": str(serving_dir), "production_cache_key": ""},
    )
    return baseline


def test_baseline_is_a_copy_of_the_production_model(tmp_path):
    serving = tmp_path / "serving"
    pushed_version(serving, "100", b"old")
    pushed_version(serving, "200", b"production weights")
    baseline = _run_executor(tmp_path, serving)

    copied = Path(baseline.uri) / "Format-Serving"
    assert (copied / "variables" / "variables.data-00000-of-00001").read_bytes() == b"production weights"
    assert baseline.get_string_custom_property("baseline_source") == production_model.FROM_PRODUCTION
    assert baseline.get_string_custom_property("production_version") == "200"
    assert baseline.get_string_custom_property("model_fingerprint") == versions.production_fingerprint(
        serving
    )


def test_a_rolled_back_version_is_not_the_baseline(tmp_path):
    serving = tmp_path / "serving"
    pushed_version(serving, "100", b"good")
    pushed_version(serving, "200", b"rolled back")
    versions.record_rollback(serving)
    assert _run_executor(tmp_path, serving).get_string_custom_property("production_version") == "100"


def test_without_production_the_candidate_is_its_own_baseline(tmp_path):
    baseline = _run_executor(tmp_path, tmp_path / "empty_serving")
    copied = Path(baseline.uri) / "Format-Serving"
    assert (copied / "variables" / "variables.data-00000-of-00001").read_bytes() == b"candidate weights"
    assert baseline.get_string_custom_property("baseline_source") == production_model.FROM_CANDIDATE
    assert baseline.get_string_custom_property("production_version") == ""


def test_the_serving_folder_is_read_when_the_executor_runs(tmp_path):
    serving = tmp_path / "serving"
    key_when_built = versions.production_fingerprint(serving)
    pushed_version(serving, "300", b"pushed after the pipeline was built")
    baseline = _run_executor(tmp_path, serving)
    assert key_when_built == ""
    assert baseline.get_string_custom_property("production_version") == "300"

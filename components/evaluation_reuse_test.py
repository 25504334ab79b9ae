"""A reused evaluation against a real one: TFMA judging a candidate against a copy of itself."""

import json
import math

import pytest
from google.protobuf import json_format
from tensorflow_model_analysis.writers import metrics_plots_and_validations_writer as tfma_writer

from components import evaluation_reuse
from tests.support import model_free_evaluation

MODEL_LOCATIONS = {"candidate": "/models/candidate", "baseline": "/models/production"}


@pytest.fixture(scope="module")
def evaluations(tmp_path_factory):
    """(the candidate evaluated alone, the candidate evaluated against itself, the latter's config)."""
    root = tmp_path_factory.mktemp("evaluations")
    alone, _ = model_free_evaluation.evaluate_candidate(root / "alone", against_itself=False)
    full, config = model_free_evaluation.evaluate_candidate(root / "full", against_itself=True)
    return alone, full, config


def _by_slice(records, entries: str) -> dict:
    """Slice -> {key: value} of metrics or plots protos, as JSON-like data."""
    return {
        json.dumps(json_format.MessageToDict(record.slice_key), sort_keys=True): {
            json.dumps(json_format.MessageToDict(entry.key), sort_keys=True): json_format.MessageToDict(
                entry.value
            )
            for entry in getattr(record, entries)
        }
        for record in records
    }


def _assert_close(ours, theirs, where=""):
    """Equal structure; numbers equal up to TFMA's own run-to-run noise (a sum in another order)."""
    if isinstance(theirs, dict):
        assert sorted(ours) == sorted(theirs), where
        for key in theirs:
            _assert_close(ours[key], theirs[key], f"{where}/{key}")
    elif isinstance(theirs, list):
        assert len(ours) == len(theirs), where
        for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            _assert_close(a, b, f"{where}[{index}]")
    elif isinstance(theirs, float) or theirs in ("NaN", "Infinity", "-Infinity"):
        a, b = float(ours), float(theirs)
        assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-8, abs_tol=1e-12), where
    else:
        assert ours == theirs, where


def _validation(uri) -> dict:
    result = json_format.MessageToDict(tfma_writer.load_and_deserialize_validation_result(str(uri)))
    result.get("metricValidationsPerSlice", []).sort(
        key=lambda v: json.dumps(v.get("sliceKey"), sort_keys=True)
    )
    result.get("validationDetails", {}).get("slicingDetails", []).sort(
        key=lambda d: json.dumps(d, sort_keys=True)
    )
    return result


def test_a_reused_evaluation_is_what_tfma_writes_for_the_candidate_against_itself(evaluations, tmp_path):
    alone, full, config = evaluations
    reused = tmp_path / "reused"
    evaluation_reuse.write_reused(str(alone), str(reused), config, MODEL_LOCATIONS)

    ours = _by_slice(tfma_writer.load_and_deserialize_metrics(str(reused)), "metric_keys_and_values")
    theirs = _by_slice(tfma_writer.load_and_deserialize_metrics(str(full)), "metric_keys_and_values")
    assert len(theirs) >= 10 and any('"isDiff": true' in key for key in next(iter(theirs.values())))
    _assert_close(ours, theirs)
    _assert_close(
        _by_slice(tfma_writer.load_and_deserialize_plots(str(reused)), "plot_keys_and_values"),
        _by_slice(tfma_writer.load_and_deserialize_plots(str(full)), "plot_keys_and_values"),
    )
    # The same verdict, for the same reasons: the gates TFMA failed on its own evaluation fail here.
    theirs_validation = _validation(full)
    assert not theirs_validation.get("validationOk") and theirs_validation["metricValidationsPerSlice"]
    _assert_close(_validation(reused), theirs_validation)
    assert sorted(p.name for p in reused.iterdir()) == sorted(p.name for p in full.iterdir())


def test_a_reused_evaluation_can_be_reused_again(evaluations, tmp_path):
    alone, _, config = evaluations
    evaluation_reuse.write_reused(str(alone), str(tmp_path / "once"), config, MODEL_LOCATIONS)
    evaluation_reuse.write_reused(str(tmp_path / "once"), str(tmp_path / "twice"), config, MODEL_LOCATIONS)
    assert _by_slice(
        tfma_writer.load_and_deserialize_metrics(str(tmp_path / "twice")), "metric_keys_and_values"
    ) == (
        _by_slice(tfma_writer.load_and_deserialize_metrics(str(tmp_path / "once")), "metric_keys_and_values")
    )


def test_only_a_complete_evaluation_of_the_same_key_is_found(tmp_path):
    parent = tmp_path / "Evaluator" / "evaluation"
    for execution, key in (("7", "other"), ("9", "wanted"), ("12", "wanted"), ("15", None)):
        (parent / execution).mkdir(parents=True)
        if key:  # "15" was killed before its manifest was written
            evaluation_reuse.write_manifest(str(parent / execution), key)
    assert evaluation_reuse.find_earlier(str(parent / "20"), "wanted") == str(parent / "12")  # the newest
    assert evaluation_reuse.find_earlier(str(parent / "12"), "wanted") == str(parent / "9")  # never itself
    assert evaluation_reuse.find_earlier(str(parent / "20"), "missing") is None

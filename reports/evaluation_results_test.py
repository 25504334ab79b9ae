"""The report's data is TFMA's own numbers, complete, worst first, with failures explained."""

import io

import pytest
import tensorflow_model_analysis as tfma

from reports import evaluation_results
from tests.support import model_free_evaluation

KEY = model_free_evaluation.KEY_SLICE


@pytest.fixture(scope="module")
def content(model_free_evaluation):
    return evaluation_results.read_evaluation(str(model_free_evaluation), KEY, min_slice_examples=100)


def _by_slice(content):
    return {row["slice"]: row for row in content["slices"]}


def test_every_slice_tfma_computed_is_read_with_its_values(model_free_evaluation, content):
    rows = _by_slice(content)
    for model, field in ((tfma.CANDIDATE_KEY, "metrics"), (tfma.BASELINE_KEY, "baseline_metrics")):
        result = tfma.load_eval_result(str(model_free_evaluation), model_name=model)
        assert len(result.slicing_metrics) == len(rows)
        for slice_key, sliced in result.slicing_metrics:
            metrics = sliced[""][""]
            row = rows[evaluation_results.slice_name(slice_key)]
            assert row[field]["example_count"] == metrics["example_count"]["doubleValue"]
            assert row[field]["binary_accuracy"] == pytest.approx(metrics["binary_accuracy"]["doubleValue"])
            assert row[field]["fall_out@0.5"] == pytest.approx(
                metrics["fall_out"]["arrayValue"]["float64Values"][1]
            )
            if row[field]["auc"] is not None:
                assert row[field]["auc"] == pytest.approx(metrics["auc"]["doubleValue"])


def test_every_configured_slicing_spec_is_present(content):
    assert set(content["slice_specs"]) == {"Overall", "payment_type", "payment_type × trip_start_hour_band"}
    assert {row["spec"] for row in content["slices"]} == set(content["slice_specs"])
    assert len(_by_slice(content)) == 1 + 3 + 4 + 4 + 1  # overall, 3 payment types, their crosses


def test_auc_is_not_reported_where_every_label_is_the_same(content):
    cash = _by_slice(content)["payment_type=Cash"]
    assert cash["metrics"]["mean_label"] == 0.0
    assert cash["metrics"]["auc"] is None


def test_worst_slices_first_and_thin_slices_last(content):
    judged = [row for row in content["slices"] if not row["small"]]
    aucs = [row["metrics"]["auc"] for row in judged if row["metrics"]["auc"] is not None]
    assert aucs == sorted(aucs)
    assert content["slices"][: len(judged)] == judged
    assert _by_slice(content)["payment_type=Prcard"]["small"]
    assert _by_slice(content)["payment_type=Credit Card"]["is_key_slice"]


def test_failures_give_value_bound_and_the_baselines_value(content):
    overall = _by_slice(content)["Overall"]
    failures = {(f["metric"], f["bound"]): f for f in content["failures"]}
    floor = failures[("auc", ">= 0.9")]
    assert floor["slice"] == "Overall"
    assert floor["value"] == pytest.approx(overall["metrics"]["auc"])
    assert floor["baseline_value"] == pytest.approx(overall["baseline_metrics"]["auc"])
    change = failures[("auc", "change vs baseline >= -0.01")]
    assert change["change_vs_baseline"] == pytest.approx(change["value"] - change["baseline_value"])


def test_key_slice_floor_fails_a_model_below_it(tmp_path):
    evaluation = model_free_evaluation.evaluate(tmp_path, key_slice_min_auc=0.9, key_slice_max_auc_drop=1.0)
    failures = evaluation_results.validation_failures(str(evaluation))
    [key_failure] = [f for f in failures if f["slice"] == "payment_type=Credit Card"]
    assert key_failure["metric"] == "auc"
    assert key_failure["value"] < 0.9
    assert key_failure["bound"].startswith(">= 0.9 (key slice")


def test_a_key_slice_regression_against_production_is_not_blessed(tmp_path):
    """The candidate clears every floor, but on card trips it is worse than production by more than 0.02."""
    evaluation = model_free_evaluation.evaluate(
        tmp_path,
        min_auc=0.5,
        min_accuracy=0.5,
        max_auc_drop=1.0,
        key_slice_min_auc=0.5,
        key_slice_min_accuracy=0.5,
    )
    [failure] = evaluation_results.validation_failures(str(evaluation))
    assert (failure["metric"], failure["slice"]) == ("auc", "payment_type=Credit Card")
    assert failure["bound"] == "change vs baseline >= -0.02 (key slice, judged from 100 examples)"
    assert failure["change_vs_baseline"] == pytest.approx(
        failure["value"] - failure["baseline_value"], abs=1e-6
    )
    assert failure["change_vs_baseline"] < -0.02


@pytest.mark.parametrize("min_slice_examples, fails", [(100, False), (5, True)])
def test_a_key_slice_too_thin_to_judge_cannot_flip_the_blessing(tmp_path, min_slice_examples, fails):
    # Prcard: 6 trips, all predicted wrongly (AUC 0, accuracy 0).
    evaluation = model_free_evaluation.evaluate(
        tmp_path,
        key_slice=(("payment_type", "Prcard"),),
        key_slice_min_auc=0.99,
        key_slice_min_accuracy=0.99,
        min_slice_examples=min_slice_examples,
    )
    failing_slices = {f["slice"] for f in evaluation_results.validation_failures(str(evaluation))}
    assert ("payment_type=Prcard" in failing_slices) is fails


def test_an_evaluation_on_too_few_examples_is_not_blessed_and_says_so(tmp_path):
    """The same evaluation (1,006 examples) against a minimum of 2,000: too thin to bless, whatever the
    metrics, and the summary says so first."""
    from reports import run_summary

    evaluation = model_free_evaluation.evaluate(tmp_path, min_evaluation_examples=2000)
    failures = evaluation_results.validation_failures(str(evaluation))
    [thin] = [f for f in failures if f["metric"] == "example_count"]
    assert (thin["slice"], thin["value"], thin["bound"]) == ("Overall", 1006, ">= 2000")
    assert run_summary.too_thin_to_bless(failures) == {"examples": 1006, "needs": ">= 2000"}
    summary = {
        "components": [],
        "evaluation": {
            "metrics": {"example_count": 1006},
            "baseline": {"source": "none"},
            "blessed": False,
            "not_blessed_because": failures,
            "too_thin_to_bless": run_summary.too_thin_to_bless(failures),
        },
        "pushed_model": None,
    }
    printed = io.StringIO()
    run_summary.print_summary(summary, tmp_path / "run_summary.json", out=printed)
    assert "The evaluation is too thin to bless: 1006 examples judged, >= 2000 needed" in printed.getvalue()
    assert "example_count on slice Overall: 1006 (needs >= 2000" in printed.getvalue()

"""Live quality is scikit-learn's on the same trips; CBPE's estimate from calibrated probabilities alone
comes within a stated tolerance of what the trips then realise."""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from monitoring import quality

# CBPE's error on 2,000 calibrated predictions: the realised accuracy itself varies by about
# sqrt(0.2 * 0.8 / 2000) = 0.009 around its expectation, so 0.03 is over three standard errors.
TOLERANCE = 0.03


def _calibrated(seed: int, count: int = 2000):
    """Scores whose labels happen with exactly their probability (a calibrated model), skewed as ours are."""
    rng = np.random.default_rng(seed)
    scores = rng.beta(0.6, 0.9, count)
    return (rng.random(count) < scores).astype(int), scores


def test_measured_quality_is_scikit_learns():
    labels, scores = _calibrated(0)
    found = quality.measured(labels, scores, threshold=0.5)
    assert found["auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert found["accuracy"] == pytest.approx(accuracy_score(labels, scores >= 0.5), abs=1e-12)
    assert found["positive_rate"] == pytest.approx((scores >= 0.5).mean())
    assert found["calibration"] == pytest.approx(scores.mean() / labels.mean())


@pytest.mark.parametrize("seed", range(10))
def test_cbpe_estimates_accuracy_and_auc_of_calibrated_predictions(seed):
    labels, scores = _calibrated(seed)
    estimated = quality.estimated(scores, threshold=0.5)
    realised = quality.measured(labels, scores, threshold=0.5)
    assert abs(estimated["accuracy"] - realised["accuracy"]) < TOLERANCE
    assert abs(estimated["auc"] - realised["auc"]) < TOLERANCE


def test_recalibration_on_a_labelled_reference_repairs_overconfident_scores():
    labels, scores = _calibrated(1, count=6000)
    overconfident = np.clip(scores * 1.6 - 0.3, 0.001, 0.999)  # the same ranking, wrong probabilities
    reference, window = slice(0, 3000), slice(3000, None)
    calibrate = quality.Calibrator(labels[reference], overconfident[reference])
    realised = quality.measured(labels[window], overconfident[window], threshold=0.5)
    raw = quality.estimated(overconfident[window], threshold=0.5)
    repaired = quality.estimated(overconfident[window], threshold=0.5, calibrate=calibrate)
    assert abs(repaired["accuracy"] - realised["accuracy"]) < TOLERANCE
    assert abs(raw["accuracy"] - realised["accuracy"]) > abs(repaired["accuracy"] - realised["accuracy"])


def test_a_window_with_one_class_has_no_auc():
    found = quality.measured([0, 0, 0], [0.1, 0.7, 0.2], threshold=0.5)
    assert found["auc"] is None and found["accuracy"] == pytest.approx(2 / 3)

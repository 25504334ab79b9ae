"""Model quality on served traffic: measured where labels arrived, estimated where they have not yet.

- **Live quality** of labelled trips (monitoring/refresh.py chooses which: a window bounded in time, per
  live version and route, overall and on the key slice): AUC, accuracy at the decision threshold,
  calibration (mean prediction over mean label, TFMA's definition) and positive rate.
- **Estimated quality** before labels arrive: confidence-based performance estimation (CBPE; NannyML,
  "Estimating model performance without ground truth", https://nannyml.readthedocs.io/en/stable/how_it_works/performance_estimation.html).
  With calibrated probabilities p, a trip predicted positive (p >= t) is right with probability p, one
  predicted negative with 1 - p; so the expected accuracy is the mean of those, and the expected
  confusion matrix at every threshold gives an expected ROC curve, whose area is the expected AUC.
  Like NannyML, it first recalibrates the scores on a labelled reference window that is not the training
  data (isotonic regression), and it assumes no concept drift: a change in the relation between
  features and labels is exactly what it cannot see, and what the realised figures then reveal.

NannyML itself does not fit the lock (it needs pyarrow >= 13; TFX 1.16 pins < 11), hence this one.
"""

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score


def _auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    return float(roc_auc_score(labels, scores)) if 0 < labels.sum() < len(labels) else None


def measured(labels, scores, threshold: float) -> dict:
    """Realised quality of predictions `scores` against `labels` (0/1)."""
    labels, scores = np.asarray(labels, dtype=float), np.asarray(scores, dtype=float)
    if not len(labels):
        return {"trips": 0, "auc": None, "accuracy": None, "calibration": None, "positive_rate": None}
    predicted = scores >= threshold
    mean_label = labels.mean()
    return {
        "trips": int(len(labels)),
        "auc": _auc(labels, scores),
        "accuracy": float((predicted == labels.astype(bool)).mean()),
        "calibration": float(scores.mean() / mean_label) if mean_label > 0 else None,
        "positive_rate": float(predicted.mean()),
    }


class Calibrator:
    """Isotonic recalibration of scores on a labelled reference window (CBPE's first step)."""

    def __init__(self, reference_labels=None, reference_scores=None):
        self.model = None
        if (
            reference_labels is not None
            and len(reference_labels) >= 20
            and 0 < np.sum(reference_labels) < len(reference_labels)
        ):
            self.model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            self.model.fit(
                np.asarray(reference_scores, dtype=float), np.asarray(reference_labels, dtype=float)
            )

    def __call__(self, scores) -> np.ndarray:
        scores = np.asarray(scores, dtype=float)
        return self.model.predict(scores) if self.model is not None else scores


def estimated(scores, threshold: float, calibrate: Calibrator | None = None) -> dict:
    """CBPE: expected accuracy and AUC of predictions `scores` (their decisions at `threshold`), from
    calibrated probabilities alone."""
    scores = np.asarray(scores, dtype=float)
    if not len(scores):
        return {"trips": 0, "accuracy": None, "auc": None}
    probability = (calibrate or Calibrator())(scores)
    positive = scores >= threshold
    accuracy = float(np.where(positive, probability, 1 - probability).mean())
    # Expected ROC: at each score cut, expected true and false positives among the trips above it.
    order = np.argsort(-scores, kind="stable")
    expected_tp = np.concatenate([[0.0], np.cumsum(probability[order])])
    expected_fp = np.concatenate([[0.0], np.cumsum(1 - probability[order])])
    if expected_tp[-1] <= 0 or expected_fp[-1] <= 0:
        return {"trips": int(len(scores)), "accuracy": accuracy, "auc": None}
    tpr, fpr = expected_tp / expected_tp[-1], expected_fp / expected_fp[-1]
    auc = float(np.trapz(tpr, fpr))
    return {"trips": int(len(scores)), "accuracy": accuracy, "auc": auc}

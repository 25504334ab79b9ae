"""The evaluated figures: the positive rate at the decision threshold from TFMA's confusion matrices, and
a store that cannot be read leaves the version without figures rather than stopping the monitor."""

import pytest

from config import pipeline as pipeline_config
from monitoring import evaluated


def _matrix(threshold: float, tp: int, fp: int, tn: int, fn: int) -> dict:
    return {"threshold": threshold, "true_positives": tp, "false_positives": fp, "true_negatives": tn,
            "false_negatives": fn}  # fmt: skip


def test_the_positive_rate_is_read_at_the_decision_threshold():
    threshold = pipeline_config.REPORTED_DECISION_THRESHOLD
    matrices = [_matrix(threshold - 0.1, 50, 50, 0, 0), _matrix(threshold, 30, 10, 50, 10)]
    assert evaluated.positive_rate(matrices) == pytest.approx(40 / 100)
    assert evaluated.positive_rate([_matrix(threshold + 0.2, 1, 1, 1, 1)]) is None
    assert evaluated.positive_rate([_matrix(threshold, 0, 0, 0, 0)]) is None


def test_an_unreadable_store_gives_no_figures_and_says_so(tmp_path, capsys):
    store = tmp_path / "metadata.sqlite"
    store.write_text("not a database")
    figures = evaluated.EvaluatedFigures(store)
    assert figures.of("7") is None
    assert "the evaluation of version 7 could not be read" in capsys.readouterr().out
    store.unlink()
    assert figures.of("7") is None  # asked again: now no store, so no run pushed it
    assert capsys.readouterr().out == ""

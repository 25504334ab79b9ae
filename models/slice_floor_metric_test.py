"""The key-slice floor: a shortfall that only counts on slices with enough examples."""

import pytest

from models import slice_floor_metric


def test_shortfall_is_the_distance_below_the_floor():
    assert slice_floor_metric.shortfall(0.62, floor=0.65, examples=500, min_examples=100) == pytest.approx(
        0.03
    )


def test_no_shortfall_at_or_above_the_floor():
    assert slice_floor_metric.shortfall(0.65, floor=0.65, examples=500, min_examples=100) == 0.0
    assert slice_floor_metric.shortfall(0.90, floor=0.65, examples=500, min_examples=100) == 0.0


def test_a_slice_with_too_few_examples_cannot_fall_short():
    assert slice_floor_metric.shortfall(0.0, floor=0.65, examples=99, min_examples=100) == 0.0


def test_only_known_metrics_can_be_wrapped():
    with pytest.raises(ValueError, match="wraps one of"):
        slice_floor_metric.ShortfallBelowFloor(metric="loss", floor=0.5, min_examples=10)

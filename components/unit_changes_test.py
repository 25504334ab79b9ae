"""The units statistic on the sample's real half-years: natural drift stays under the bound, and a constant
factor from 1.5 to 3 (or 100) on any one amount, in any transition, crosses it."""

import itertools

import numpy as np
import pytest

from components import unit_changes
from config import pipeline as pipeline_config
from inputs import taxi_sample

AMOUNTS = pipeline_config.UNIT_CHANGE_AMOUNTS
FACTORS = (1.5, 2.0, 3.0, 100.0, 1 / 1.5, 1 / 3)


@pytest.fixture(scope="module")
def spans(tmp_path_factory) -> list[dict[str, np.ndarray]]:
    """Every half-year of the sample, oldest first, as amount -> values."""
    folder = tmp_path_factory.mktemp("spans")
    taxi_sample.write_spans(taxi_sample.sample_csv_path(), folder)
    return [unit_changes.columns_of_csv([path], AMOUNTS) for path in sorted(folder.glob("span-*/data.csv"))]


def _changes(current: dict, reference: dict) -> dict[str, float]:
    return unit_changes.scale_changes(
        unit_changes.relation_medians(current, AMOUNTS),
        unit_changes.relation_medians(reference, AMOUNTS),
        AMOUNTS,
    )


def test_real_half_years_stay_within_the_bound(spans):
    sizes = [
        unit_changes.size_of_change(factor)
        for previous, current in itertools.pairwise(spans)
        for factor in _changes(current, previous).values()
    ]
    assert len(sizes) == 7 * len(AMOUNTS)
    assert max(sizes) < 1.18 < pipeline_config.MAX_UNIT_CHANGE


def test_serving_data_against_the_training_window_stays_within_the_bound(spans):
    training = {a: np.concatenate([span[a] for span in spans[:6]]) for a in AMOUNTS}
    changes = _changes(spans[-1], training)
    assert max(map(unit_changes.size_of_change, changes.values())) < pipeline_config.MAX_UNIT_CHANGE


@pytest.mark.parametrize("amount", AMOUNTS)
def test_a_change_of_units_in_any_amount_and_transition_is_caught_and_named(spans, amount):
    for factor in FACTORS:
        for previous, current in itertools.pairwise(spans):
            changed = dict(current, **{amount: current[amount] * factor})
            changes = _changes(changed, previous)
            assert unit_changes.size_of_change(changes[amount]) > pipeline_config.MAX_UNIT_CHANGE, (
                amount,
                factor,
            )
            # The amount that changed is the one that moved most.
            assert max(changes, key=lambda a: unit_changes.size_of_change(changes[a])) == amount


def test_missing_and_zero_values_are_left_out():
    columns = {
        "fare": np.array([10.0, np.nan, 0.0, 20.0]),
        "trip_miles": np.array([2.0, 1.0, 3.0, 4.0]),
        "trip_seconds": np.array([600.0, 300.0, np.nan, 0.0]),
    }
    medians = unit_changes.relation_medians(columns, AMOUNTS)
    assert medians[("fare", "trip_miles")] == 5.0  # rows 1 and 4
    assert medians[("fare", "trip_seconds")] == pytest.approx(10 / 600)
    assert medians[("trip_miles", "trip_seconds")] == pytest.approx((2 / 600 + 1 / 300) / 2)


def test_amounts_are_read_as_the_examples_store_them(tmp_path):
    """CsvExampleGen infers a column's type per span: whole-dollar fares arrive as integers and a column
    with text in it as bytes. Integers are read as the amounts they are; text has no scale (NaN)."""
    import tensorflow as tf

    def example(fare, seconds, miles):
        feature = {
            "fare": tf.train.Feature(int64_list=tf.train.Int64List(value=[fare])),
            "trip_seconds": tf.train.Feature(bytes_list=tf.train.BytesList(value=[seconds.encode()])),
            "trip_miles": tf.train.Feature(float_list=tf.train.FloatList(value=miles)),
        }
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

    path = str(tmp_path / "examples.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        writer.write(example(12, "15 min", []))  # miles missing: its kind comes from the next example
        writer.write(example(30, "20 min", [2.5]))

    columns = unit_changes.columns_of_examples([path], AMOUNTS)

    assert columns["fare"].tolist() == [12.0, 30.0]
    assert np.isnan(columns["trip_seconds"]).all()
    assert np.isnan(columns["trip_miles"][0]) and columns["trip_miles"][1] == 2.5

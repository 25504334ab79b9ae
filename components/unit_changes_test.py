"""The units statistics on the sample's real half-years: real drift stays under every bound (the margin is
asserted), a change of units in any amount is caught in every comparison, whole or in part of the rows,
and the amount that changed is the one named."""

import numpy as np
import pytest

from components import unit_changes
from config import pipeline as pipeline_config
from inputs import taxi_sample

AMOUNTS = pipeline_config.UNIT_CHANGE_AMOUNTS
BOUNDS = unit_changes.Bounds.of(pipeline_config.Data())
WHOLE_COLUMN_FACTORS = (1.5, 1.609, 2.0, 3.0, 60.0, 100.0)


@pytest.fixture(scope="module")
def spans(tmp_path_factory) -> dict[int, dict[str, np.ndarray]]:
    """Every half-year of the sample, as amount -> values."""
    folder = tmp_path_factory.mktemp("spans")
    taxi_sample.write_spans(taxi_sample.sample_csv_path(), folder)
    return {
        int(path.parent.name.split("-")[1]): unit_changes.read_columns([path], AMOUNTS)
        for path in folder.glob("span-*/data.csv")
    }


@pytest.fixture(scope="module")
def comparisons(spans) -> list:
    """(label, current, reference sketches): each span against the one before it and the six before it."""
    return list(unit_changes.real_comparisons(spans))


def test_real_half_years_stay_within_every_bound_with_a_margin(comparisons):
    assert len(comparisons) == 7 + 6
    largest = {"factor": 1.0, "ks": 0.0, "outside": 0.0}
    for label, current, reference in comparisons:
        changes = unit_changes.compare(current, reference, AMOUNTS, BOUNDS)
        assert set(changes) == set(AMOUNTS)
        for amount, change in changes.items():
            assert change.crossed(BOUNDS) == {}, (label, amount)
            largest["factor"] = max(largest["factor"], unit_changes.size_of_change(change.factor))
            largest["ks"] = max(largest["ks"], change.ks / change.ks_bound)
            largest["outside"] = max(largest["outside"], change.outside / change.outside_bound)
    # The margins schema/README.md states ("Changes of units").
    assert largest["factor"] < 1.18 < BOUNDS.max_factor
    assert largest["ks"] < 0.83 and largest["outside"] < 0.72


@pytest.mark.parametrize("amount", AMOUNTS)
def test_a_whole_column_in_other_units_is_caught_everywhere_and_named(comparisons, amount):
    for factor in WHOLE_COLUMN_FACTORS:
        for k in (factor, 1 / factor):
            for seed, (label, current, reference) in enumerate(comparisons):
                changed = unit_changes.with_units_changed(current, amount, k, 1.0, seed)
                changes = unit_changes.compare(changed, reference, AMOUNTS, BOUNDS)
                assert changes[amount].crossed(BOUNDS), (label, amount, k)
                assert unit_changes.size_of_change(changes[amount].factor) > 1.25, (label, amount, k)
                # Only the amount that changed is named, with four amounts and with three (serving logs).
                assert [a for a in AMOUNTS if changes[a].crossed(BOUNDS)] == [amount], (label, amount, k)
                if amount != "tips":
                    without_tips = {a: v for a, v in changed.items() if a != "tips"}
                    changes = unit_changes.compare(without_tips, reference, AMOUNTS, BOUNDS)
                    assert [a for a in changes if changes[a].crossed(BOUNDS)] == [amount], (label, amount, k)


@pytest.mark.parametrize(
    "factor, share",
    [(100.0, 0.1), (60.0, 0.1), (10.0, 0.3), (3.0, 0.5), (2.0, 0.7)],
    ids=lambda value: str(value),
)
def test_part_of_the_rows_in_other_units_is_caught_everywhere(comparisons, factor, share):
    """The smallest shares caught in every comparison of the real spans, for every amount (the table in
    schema/README.md has each amount's; these hold for all four)."""
    for amount in AMOUNTS:
        for k in (factor, 1 / factor):
            for seed, (label, current, reference) in enumerate(comparisons):
                changed = unit_changes.with_units_changed(current, amount, k, share, seed)
                crossed = unit_changes.compare(changed, reference, AMOUNTS, BOUNDS)[amount].crossed(BOUNDS)
                assert crossed, (label, amount, k, share)


def test_a_mixture_is_seen_by_the_share_of_rows_not_the_median(comparisons):
    """Cents among dollars in a tenth of the rows: the median relation barely moves, the mixture shows."""
    label, current, reference = comparisons[-2]  # 2016 H2 against 2016 H1
    changed = unit_changes.with_units_changed(current, "fare", 100.0, 0.1, seed=1)
    change = unit_changes.compare(changed, reference, AMOUNTS, BOUNDS)["fare"]
    assert unit_changes.size_of_change(change.factor) < BOUNDS.max_factor
    assert set(change.crossed(BOUNDS)) >= {"outside"}
    assert "of rows lie outside the reference's central 99 %" in change.crossed(BOUNDS)["outside"]


def test_missing_zero_and_text_values_are_left_out_of_the_relations(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text(
        'fare,trip_miles,trip_seconds,tips\n10,2,600,1\n"20",4,,0\n30, 3 ,15 min,3\n0,1,300,\n',
        encoding="utf-8",
    )
    columns = unit_changes.read_columns([path], AMOUNTS)
    assert columns["fare"].tolist() == [10.0, 20.0, 30.0, 0.0]
    assert columns["trip_miles"].tolist() == [2.0, 4.0, 3.0, 1.0]
    assert np.isnan(columns["trip_seconds"][[1, 2]]).all() and np.isnan(columns["tips"][3])
    relations = unit_changes.relations(columns, AMOUNTS)
    assert np.exp(relations["fare/trip_miles"]).tolist() == pytest.approx([5, 5, 10])  # not the zero fare
    assert np.exp(relations["fare/trip_seconds"]).tolist() == pytest.approx([10 / 600])
    assert np.exp(relations["fare/tips"]).tolist() == pytest.approx(
        [10, 10]
    )  # no tip (0) and empty are left out


def test_rows_are_sampled_by_a_hash_of_their_content_not_their_place(spans):
    columns = spans[20152]
    sample = unit_changes.sample_by_hash(columns, 500, seed=7)
    assert len(sample["fare"]) == 500
    reversed_rows = {name: values[::-1] for name, values in columns.items()}
    again = unit_changes.sample_by_hash(reversed_rows, 500, seed=7)
    assert sorted(_rows(again)) == sorted(_rows(sample))
    # From the whole span: rows of its last tenth are in the sample about as often as any others.
    positions = _positions(columns, sample)
    assert 30 < sum(p >= 0.9 * len(columns["fare"]) for p in positions) < 75
    assert unit_changes.sample_by_hash(columns, 500, seed=8)["fare"].tolist() != sample["fare"].tolist()


def _rows(columns) -> list[tuple]:
    return list(zip(*(np.nan_to_num(columns[a], nan=-1).tolist() for a in AMOUNTS), strict=True))


def _positions(columns, sample) -> list[int]:
    index = {}
    for position, row in enumerate(_rows(columns)):
        index.setdefault(row, position)
    return [index[row] for row in _rows(sample)]


def test_sketches_pool_and_rescale_as_the_rows_would(spans):
    first, second = spans[20151], spans[20152]
    together = {a: np.concatenate([first[a], second[a]]) for a in AMOUNTS}
    pooled = unit_changes.pooled(
        [unit_changes.sketches(first, AMOUNTS), unit_changes.sketches(second, AMOUNTS)]
    )
    for name, values in unit_changes.relations(together, AMOUNTS).items():
        values = np.sort(values)
        assert pooled[name].rows == len(values)
        # The pooled sketch's distribution is the rows' own, to within about two of its steps (0.005 each).
        empirical = np.searchsorted(values, values, side="right") / len(values)
        assert np.max(np.abs(pooled[name].cdf(values) - empirical)) < 0.015, name
    # A reference rescaled by x1.3 on fare is what fares x1.3 would have given.
    scaled_rows = unit_changes.sketches(dict(first, fare=first["fare"] * 1.3), AMOUNTS)
    rescaled = unit_changes.rescaled(unit_changes.sketches(first, AMOUNTS), "fare", 1.3)
    for name in scaled_rows:
        assert np.allclose(rescaled[name].quantiles, scaled_rows[name].quantiles, atol=1e-9), name

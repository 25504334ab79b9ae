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
    """(label, current, reference sketches, bounds): each span against the one before it (with its own
    KS floor) and the six before it pooled."""
    return [
        (reference.label, current, reference.sketches, BOUNDS.against(reference.previous_span))
        for _, current, references in unit_changes.real_comparisons(spans)
        for reference in references
    ]


def test_real_half_years_stay_within_every_bound_with_a_margin(comparisons):
    assert len(comparisons) == 7 + 7
    largest = {"factor": 1.0, "ks": 0.0, "outside": 0.0}
    for label, current, reference, bounds in comparisons:
        changes = unit_changes.compare(current, reference, AMOUNTS, bounds)
        assert set(changes) == set(AMOUNTS)
        for amount, change in changes.items():
            assert change.crossed(bounds) == {}, (label, amount)
            largest["factor"] = max(largest["factor"], unit_changes.size_of_change(change.factor))
            largest["ks"] = max(largest["ks"], change.ks / change.ks_bound)
            largest["outside"] = max(largest["outside"], change.outside / change.outside_bound)
    # The margins schema/README.md states ("Changes of units").
    assert largest["factor"] < 1.18 < BOUNDS.max_factor
    assert largest["ks"] < 0.83 and largest["outside"] < 0.55


def test_fewer_rows_of_the_real_spans_stay_within_every_bound(spans):
    """Every 2nd to 9th row of the sample (spans of 45 to 1,300 rows): the bounds widen with the noise."""
    worst = unit_changes.natural_changes(spans, AMOUNTS, BOUNDS)[-1]
    shares = [
        float(part.split(" of its bound")[0].split()[-1]) for part in worst.split(": ", 1)[1].split("; ")
    ]
    assert max(shares) < 0.95, worst


@pytest.mark.parametrize("amount", AMOUNTS)
def test_a_whole_column_in_other_units_stops_every_span_and_is_named(spans, amount):
    """Every real span stopped (by its comparison with the span before it, or with the spans before it),
    and in every comparison only the amount that changed named, with four amounts and with three (the
    serving logs have no tips)."""
    for factor in WHOLE_COLUMN_FACTORS:
        for k in (factor, 1 / factor):
            for span, current, references in unit_changes.real_comparisons(spans):
                changed = unit_changes.with_units_changed(current, amount, k, 1.0, span)
                assert unit_changes.is_caught(changed, references, amount, AMOUNTS, BOUNDS), (span, amount, k)
                for reference in references:
                    label, bounds = reference.label, BOUNDS.against(reference.previous_span)
                    changes = unit_changes.compare(changed, reference.sketches, AMOUNTS, bounds)
                    assert unit_changes.size_of_change(changes[amount].factor) > 1.25, (label, amount, k)
                    assert [a for a in AMOUNTS if changes[a].crossed(bounds)] in ([amount], []), (label, k)
                    if amount != "tips":
                        without_tips = {a: v for a, v in changed.items() if a != "tips"}
                        changes = unit_changes.compare(without_tips, reference.sketches, AMOUNTS, bounds)
                        assert [a for a in changes if changes[a].crossed(bounds)] in ([amount], []), (
                            label,
                            k,
                        )


@pytest.mark.parametrize(
    "amounts, factor, share",
    [
        (AMOUNTS, 100.0, 0.3),
        (AMOUNTS, 10.0, 0.3),
        (AMOUNTS, 3.0, 0.5),
        (AMOUNTS, 2.0, 0.7),
        (("fare", "trip_miles", "trip_seconds"), 100.0, 0.05),
        (("fare", "trip_miles", "trip_seconds"), 60.0, 0.05),
    ],
    ids=lambda value: "all" if value == AMOUNTS else ("no tips" if isinstance(value, tuple) else str(value)),
)
def test_part_of_the_rows_in_other_units_stops_every_real_span(spans, amounts, factor, share):
    """Shares from the table in schema/README.md (`--mixtures`): a span is stopped when any of its
    comparisons (the span before it, the spans before it pooled) crosses a bound."""
    for amount in amounts:
        for k in (factor, 1 / factor):
            for span, current, references in unit_changes.real_comparisons(spans):
                changed = unit_changes.with_units_changed(current, amount, k, share, span)
                assert unit_changes.is_caught(changed, references, amount, AMOUNTS, BOUNDS), (span, amount, k)


def test_a_mixture_is_seen_by_the_share_of_rows_not_the_median(comparisons):
    """Cents among dollars in a tenth of the rows: the median relation barely moves, the mixture shows."""
    label, current, reference, _ = comparisons[-1]  # 2016 H2 against the six half-years before it
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

"""The request contract on the curated schema: types, ranges, domains and missing values, checked a column
at a time, with the first wrong trip named when a check fails."""

import pytest

from config import folders
from serving.request_contract import EXAMPLE_TRIP, BadRequest, RequestContract


@pytest.fixture(scope="module")
def contract() -> RequestContract:
    return RequestContract(folders.SCHEMA_PATH, max_batch=50)


TRIPS = [
    EXAMPLE_TRIP,
    # Integers where the schema has floats, an integral float where it has an int, a model input left out.
    dict(EXAMPLE_TRIP, fare=12, trip_start_hour=7.0, company=None),
    # Outside the domains: a negative fare, hour 25 does not exist, an unknown company and payment type.
    dict(EXAMPLE_TRIP, fare=-3.5, trip_start_hour=23, company="Nobody Cab", payment_type="Barter"),
    dict(EXAMPLE_TRIP, trip_start_month=13, pickup_community_area=None, trip_seconds=90000),
]


def test_rows_are_typed_and_missing_and_out_of_domain_values_counted_per_feature(contract):
    batch = contract.parse({"instances": TRIPS})
    assert batch.size == 4
    assert batch.columns["fare"] == [12.5, 12.0, -3.5, 12.5] and type(batch.columns["fare"][1]) is float
    assert (
        batch.columns["trip_start_hour"] == [18, 7, 23, 18]
        and type(batch.columns["trip_start_hour"][1]) is int
    )
    assert batch.columns["company"] == [
        "Taxi Affiliation Services",
        None,
        "Nobody Cab",
        "Taxi Affiliation Services",
    ]
    # Left out of every trip but optional: missing in each, as an empty CSV cell is in training.
    assert batch.missing["pickup_latitude"] == 4 and batch.missing["company"] == 1
    assert batch.out_of_domain == {
        "fare": 1,
        "payment_type": 1,
        "company": 1,
        "trip_start_month": 1,
        "trip_seconds": 1,
    }


def test_columns_give_the_same_batch_as_rows(contract):
    columns = {name: [trip.get(name) for trip in TRIPS] for name in {key for trip in TRIPS for key in trip}}
    assert contract.parse({"inputs": columns}) == contract.parse({"instances": TRIPS})


@pytest.mark.parametrize(
    "changed, expected",
    [
        ({"fare": "12.5"}, "trip 2: fare must be a number (or null), got str '12.5'"),
        ({"fare": True}, "trip 2: fare must be a number (or null), got bool True"),
        ({"trip_start_hour": 7.5}, "trip 2: trip_start_hour must be an integer (or null), got float 7.5"),
        ({"trip_start_hour": 2**64}, f"trip 2: trip_start_hour is {2**64}, outside int64's range"),
        ({"fare": 1e39}, "trip 2: fare is 1e+39, outside float32's finite range"),
        ({"fare": float("nan")}, "trip 2: fare is nan, outside float32's finite range"),
        ({"payment_type": 3}, "trip 2: payment_type must be a string (or null), got int 3"),
        ({"fare": None}, "trip 2 lacks the required feature(s) fare"),
        # Found by the fuzz test: a lone CR is left unquoted in the request log's CSV, which no reader reads.
        ({"company": "Taxi\rCo"}, "trip 2: company holds a carriage return"),
    ],
)
def test_a_wrong_value_names_the_first_trip_that_has_it(contract, changed, expected):
    trips = [EXAMPLE_TRIP, EXAMPLE_TRIP, dict(EXAMPLE_TRIP, **changed), dict(EXAMPLE_TRIP, **changed)]
    with pytest.raises(BadRequest) as refused:
        contract.parse({"instances": trips})
    assert expected in str(refused.value)


def test_rows_that_all_carry_the_same_features_give_the_batch_of_their_columns(contract):
    # The usual request, read by one transposition: every row the same features, some of them null.
    trips = [
        dict(EXAMPLE_TRIP, fare=fare, trip_start_hour=hour, company=company)
        for fare, hour, company in [
            (3, 7.0, None),
            (12.5, 23, "Nobody Cab"),
            (-1.0, 0, "Taxi Affiliation Services"),
        ]
    ]
    columns = {name: [trip[name] for trip in trips] for name in trips[0]}
    batch = contract.parse({"instances": trips})
    assert batch == contract.parse({"inputs": columns})
    assert batch.columns["fare"] == [3.0, 12.5, -1.0] and type(batch.columns["fare"][0]) is float
    assert batch.columns["trip_start_hour"] == [7, 23, 0] and type(batch.columns["trip_start_hour"][0]) is int
    assert batch.columns["pickup_latitude"] == [None] * 3 and batch.missing["pickup_latitude"] == 3
    assert batch.missing["company"] == 1 and batch.out_of_domain == {"fare": 1, "company": 1}

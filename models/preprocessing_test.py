"""preprocessing_fn on a handful of rows, through tf.Transform on Beam (the way Transform runs it)."""

import tempfile

import pytest
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from models import features, model, preprocessing

# Rows: a cash trip without tip; a 25 % card tip; exactly 20 % (not big); missing optional columns; then
# exactly 20 % again, as trips of the sample where float32's `0.2 * fare` rounds below the tip (not big);
# and one cent above 20 % (big).
ROWS = [
    {
        "fare": 10.0,
        "tips": 0.0,
        "payment_type": b"Cash",
        "company": b"Taxi Affiliation Services",
        "dropoff_latitude": 41.9,
    },
    {
        "fare": 8.0,
        "tips": 2.0,
        "payment_type": b"Credit Card",
        "company": b"Flash Cab",
        "dropoff_latitude": 41.8,
    },
    {"fare": 10.0, "tips": 2.0, "payment_type": b"Credit Card", "company": None, "dropoff_latitude": 41.95},
    {"fare": 30.0, "tips": 0.0, "payment_type": b"Cash", "company": None, "dropoff_latitude": None},
    {"fare": 15.65, "tips": 3.13, "payment_type": b"Credit Card", "company": None, "dropoff_latitude": None},
    {"fare": 25.05, "tips": 5.01, "payment_type": b"Credit Card", "company": None, "dropoff_latitude": None},
    {"fare": 4.85, "tips": 0.97, "payment_type": b"Credit Card", "company": None, "dropoff_latitude": None},
    {"fare": 4.85, "tips": 0.98, "payment_type": b"Credit Card", "company": None, "dropoff_latitude": None},
]
DENSE_FLOATS = ["fare", "tips", "trip_miles"]
DENSE_INTS = ["trip_start_hour", "trip_start_day", "trip_start_month"]
OPTIONAL_FLOATS = ["pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude"]
OPTIONAL_INTS = ["pickup_community_area", "dropoff_community_area", "trip_seconds"]


def _feature_spec():
    spec = {name: tf.io.FixedLenFeature([], tf.float32) for name in DENSE_FLOATS}
    spec.update({name: tf.io.FixedLenFeature([], tf.int64) for name in DENSE_INTS})
    spec["payment_type"] = tf.io.FixedLenFeature([], tf.string)
    spec["company"] = tf.io.VarLenFeature(tf.string)
    spec.update({name: tf.io.VarLenFeature(tf.float32) for name in OPTIONAL_FLOATS})
    spec.update({name: tf.io.VarLenFeature(tf.int64) for name in OPTIONAL_INTS})
    return spec


def _instances():
    instances = []
    for index, row in enumerate(ROWS):
        instance = {
            "trip_miles": 2.0 + index,
            "trip_start_hour": 25 if index == 0 else 9,
            "trip_start_day": 3,
            "trip_start_month": 5,
        }
        instance.update({name: [41.88] for name in OPTIONAL_FLOATS})
        instance.update({name: [8] for name in OPTIONAL_INTS})
        for name, value in row.items():
            if name in ("company", "dropoff_latitude"):
                instance[name] = [] if value is None else [value]
            else:
                instance[name] = value
        instances.append(instance)
    return instances


@pytest.fixture(scope="module")
def transformed():
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(_feature_spec()))
    with tempfile.TemporaryDirectory() as temp_dir, tft_beam.Context(temp_dir=temp_dir):
        (rows, _), _ = (_instances(), metadata) | tft_beam.AnalyzeAndTransformDataset(
            preprocessing.preprocessing_fn, output_record_batches=False
        )
    return rows


def test_label_is_tips_above_twenty_percent_of_fare_in_whole_cents(transformed):
    assert [row[features.LABEL] for row in transformed] == [0, 1, 0, 0, 0, 0, 0, 1]


def test_python_callers_get_the_same_label(transformed):
    expected = [features.is_big_tipper(row["tips"], row["fare"]) for row in ROWS]
    assert [bool(row[features.LABEL]) for row in transformed] == expected


def test_tips_never_reach_the_model(transformed):
    assert all(not key.startswith(features.TIPS) for row in transformed for key in row)


def test_transform_outputs_the_model_inputs_the_label_and_the_hour_band(transformed):
    expected = {
        features.transformed_name(f) for f in features.MODEL_INPUTS if f not in features.BUCKETIZED_FEATURES
    }
    expected |= {features.transformed_name(f) for f in features.NUMERIC_FEATURES}
    expected |= {features.bucketized_name(f) for f in features.BUCKETIZED_FEATURES}
    assert expected == set(model.model_input_names())
    assert set(transformed[0]) == expected | {features.LABEL, features.HOUR_BAND}


def test_missing_coordinate_gets_its_own_bucket(transformed):
    buckets = [row[features.bucketized_name("dropoff_latitude")] for row in transformed]
    assert buckets[3] == features.BUCKET_COUNT
    assert all(0 <= bucket < features.BUCKET_COUNT for bucket in buckets[:3])


def test_out_of_range_hour_is_clipped_into_the_embedding(transformed):
    assert transformed[0][features.transformed_name("trip_start_hour")] == 23


def test_missing_company_maps_to_a_valid_id(transformed):
    ids = [row[features.transformed_name("company")] for row in transformed]
    assert all(0 <= i < features.VOCABULARY_SIZE + features.OOV_BUCKETS for i in ids)
    assert ids[0] != ids[1]


def test_hour_band_is_derived_for_slicing_but_not_a_model_input(transformed):
    # Row 0 has hour 25 (clipped to 23), the others hour 9.
    assert [row[features.HOUR_BAND] for row in transformed] == [b"18-23 evening"] + [b"06-11 morning"] * (
        len(transformed) - 1
    )
    assert features.HOUR_BAND not in model.model_input_names()

"""The feature definitions agree with each other and with the curated schema."""

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from config import folders
from models import features


def _schema_features() -> dict[str, schema_pb2.Feature]:
    schema = text_format.Parse(folders.SCHEMA_PATH.read_text(), schema_pb2.Schema())
    return {feature.name: feature for feature in schema.feature}


def test_tips_defines_the_label_but_is_not_a_model_input():
    assert features.TIPS not in features.MODEL_INPUTS
    assert features.TIPS in features.REQUIRED_COLUMNS
    assert features.LABEL not in features.REQUIRED_COLUMNS


def test_every_required_column_is_in_the_curated_schema():
    assert set(features.REQUIRED_COLUMNS) == set(_schema_features())


def test_every_column_has_a_domain_or_a_range():
    """A column multiplied by 1,000 must break something, whether or not the model reads it."""
    assert [
        name for name, feature in _schema_features().items() if not feature.WhichOneof("domain_info")
    ] == []


def test_label_inputs_are_required_in_the_schema():
    schema = _schema_features()
    for column in (features.TIPS, features.FARE):
        assert schema[column].presence.min_fraction == 1.0, column


def test_transformed_names_are_unique():
    names = [
        features.transformed_name(f) for f in features.MODEL_INPUTS if f not in features.BUCKETIZED_FEATURES
    ]
    names += [features.bucketized_name(f) for f in features.BUCKETIZED_FEATURES]
    assert len(names) == len(set(names))


def test_integer_categories_cover_the_schema_domains():
    schema = _schema_features()
    for name, id_count in features.INTEGER_CATEGORICAL_FEATURES.items():
        assert schema[name].int_domain.max == id_count - 1, name

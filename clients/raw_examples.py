"""Raw taxi CSV rows as the serialized tf.Examples a serving client sends (typed by the curated schema)."""

from pathlib import Path

import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from config import folders
from models import features


def column_types(schema_path: Path = folders.SCHEMA_PATH) -> dict[str, int]:
    """Column -> schema_pb2 type (INT, FLOAT, BYTES) of the curated schema."""
    schema = text_format.Parse(schema_path.read_text(), schema_pb2.Schema())
    return {feature.name: feature.type for feature in schema.feature}


def typed_values(header: list[str], row: list[str], types: dict[str, int]) -> dict:
    """One CSV row as a client knows the trip: its columns without `tips` (not known at serving time),
    typed by the schema; empty cells are left out."""
    convert = {schema_pb2.BYTES: str, schema_pb2.INT: lambda v: int(float(v))}
    return {
        name: convert.get(types[name], float)(value)
        for name, value in zip(header, row, strict=True)
        if name != features.TIPS and value != ""
    }


def serialized_example(header: list[str], row: list[str], types: dict[str, int]) -> bytes:
    """One CSV row as a tf.Example of `typed_values`."""
    feature = {}
    for name, value in typed_values(header, row, types).items():
        if types[name] == schema_pb2.BYTES:
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
        elif types[name] == schema_pb2.INT:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

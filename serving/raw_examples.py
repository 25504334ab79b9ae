"""Raw taxi CSV rows as the serialized tf.Examples a serving client sends (typed by the curated schema)."""

from pathlib import Path

import tensorflow as tf
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from models import features
from pipeline import configs


def column_types(schema_path: Path = configs.SCHEMA_PATH) -> dict[str, int]:
    """Column -> schema_pb2 type (INT, FLOAT, BYTES) of the curated schema."""
    schema = text_format.Parse(schema_path.read_text(), schema_pb2.Schema())
    return {feature.name: feature.type for feature in schema.feature}


def serialized_example(header: list[str], row: list[str], types: dict[str, int]) -> bytes:
    """One CSV row as a tf.Example without `tips` (not known at serving time); empty cells are left out."""
    feature = {}
    for name, value in zip(header, row, strict=True):
        if name == features.TIPS or value == "":
            continue
        if types[name] == schema_pb2.BYTES:
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value.encode()]))
        elif types[name] == schema_pb2.INT:
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(float(value))]))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(value)]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

"""Serving the pushed model: what a client sends it (raw_examples.py: CSV rows as serialized tf.Examples).

Serving reads the Pusher's serving directory and never imports the code that assembles the pipeline.

May import: models, registry, reports, pipeline.configs.
"""

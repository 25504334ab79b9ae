"""Tests that span packages: bad input, corrupted data, end to end, Kubeflow containers, the layering.

Unit tests sit beside the code they test (`*_test.py`).

May import: config, models, registry, inputs, components, pipeline, kubeflow, reports, serving, clients, monitoring, cli, benchmarks, tools.
"""

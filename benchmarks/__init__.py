"""`make bench`, `make bench-scale`, `make bench-beam-modes` and `make bench-serve`: timings against named
baselines measured in the same run.

May import: config, models, registry, inputs, components, pipeline, kubeflow, reports, serving, clients, monitoring, cli.
"""

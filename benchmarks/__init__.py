"""`make bench`, `make bench-scale`, `make bench-beam-modes`, `make bench-serve` and `make bench-monitor`:
timings against named baselines measured in the same run.

May import: config, models, registry, inputs, components, pipeline, kubeflow, reports, serving, clients, monitoring, cli.
"""

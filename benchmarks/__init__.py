"""`make bench`, `make bench-scale` and `make bench-beam-modes`: timings against named baselines.

May import: models, registry, components, pipeline, kubeflow, reports, serving, monitoring, cli.
"""

"""Monitoring the served model and closing the loop back into training: labels that arrive later, live
and estimated quality, alerting rules, the monitor page, the retraining loop and the replay.

Monitoring reads the serving stack's metrics and request logs and the pipeline's artifacts, and starts
the pipeline only as a command, never by importing the code that assembles it (the sample's spans, for
the replay, come from `inputs`, which assembles nothing).

Its modules, one question each:
- the monitor process: `service` starts it, `http_api` maps HTTP to `monitor` (the running monitor), which
  stores `feedback`, refreshes `refresh`'s figures (from `store`, the request log and the feedback joined
  incrementally in SQLite, and `quality`, `evaluated`, `training_reference`) and exports them through
  `gauges`; `control` starts and stops it beside the stack;
- the monitor page: `page` collects (the figures, Prometheus, `served_drift`), `page_html` renders;
- the loop: `loop` decides and retrains, `spans` writes labelled trips as training data, `archive` moves
  old request logs;
- the replay (`taxi-pipeline monitor replay`): `replay` runs the steps of `replay_workspace`,
  `replay_traffic`, `replay_figures` and `replay_canary`.

May import: config, models, registry, inputs, reports, serving, clients.
"""

"""Serving the pushed model: the model server (TF Serving's REST API), the request log, the local stack
(nginx patterns, Prometheus, the canary analysis) and the same patterns as Kubernetes manifests.

Serving reads the Pusher's serving directory and never imports the code that assembles the pipeline;
what runs beside the stack (the monitor) attaches itself (`stack.attach`), so serving knows nothing of it.

May import: config, models, registry, reports.
"""

"""Serving the pushed model: the model server, split as KServe's Python server is (`model.py`: a loaded
version and the slot that picks it; `dataplane.py`: TF Serving's REST protocol over it, no HTTP;
`rest.py`: the HTTP app; `server.py`: the process), the request log, and the local stack in front of the
servers (`stack.py`, with its state, processes, the supervisor, nginx and its access log counted by mtail,
Prometheus, the release strategies, the release API over them on the control listener (`release_api.py`)
and the canary analysis). What a request must be before its content is read (`request_checks.py`), the
control plane's tokens (`credentials.py`) and the API's OpenAPI document (`openapi.py`, `openapi.yaml`).

Serving reads the Pusher's serving directory and never imports the code that assembles the pipeline;
what runs beside the stack (the monitor) attaches itself (`stack.attach`), so serving knows nothing of it.
Clients of the server live in `clients/`; the same patterns on a cluster, in `kubeflow/serving_manifests.py`.

May import: config, models, registry, reports.
"""

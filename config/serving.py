"""Serving's settings (docs/serving.md): the model server, the request log, the local stack, the canary analysis."""

# The model's name in TF Serving's REST paths (/v1/models/taxi:predict).
SERVING_MODEL_NAME = "taxi"
# How often a model server looks for a new version in the serving directory, in seconds.
SERVING_POLL_SECONDS = 1.0
# The most trips one request may carry, and the largest body (nginx refuses larger ones the same way).
SERVING_MAX_BATCH = 1000
SERVING_MAX_BODY_BYTES = 1_000_000
# The request log: buffered rows reach the disk every second (at most that much is lost to a crash); a
# file is closed (and readable by the pipeline) at 8 MB or after 5 minutes.
REQUEST_LOG_FLUSH_SECONDS = 1.0
REQUEST_LOG_MAX_BYTES = 8_000_000
REQUEST_LOG_MAX_SECONDS = 300.0
# The request log's route column; the pipeline reads a shadow's rows as what they are, the same trips
# again (answered by stable too), and leaves them out of the serving data.
REQUEST_LOG_ROUTE_COLUMN = "route"
REQUEST_LOG_TIME_COLUMN = "time"  # ISO 8601, UTC: when the trip was answered
SHADOW_ROUTE = "shadow"
# The local stack (serving/stack.py): nginx's port (the base URL), Prometheus's; servers take free ports.
SERVING_PORT = 8500
PROMETHEUS_PORT = 9290
SERVING_START_SECONDS = 120.0  # for a server to load its version and answer ready
PROMETHEUS_START_SECONDS = 30.0  # for Prometheus to answer ready
SERVING_DRAIN_SECONDS = 2.0  # after nginx stops sending to a server, before it is stopped
# A shadow's answer is thrown away, but nginx waits for it before the connection's next request: the
# shadow server answers nginx at once and predicts afterwards, and past this nginx stops waiting anyway
# (a shadow too busy to answer at all). docs/serving.md, "Shadow's cost".
SHADOW_TIMEOUT_MS = 100
# Copies a shadow server may hold waiting for its model; past this it drops new ones (and counts them).
SHADOW_MAX_PENDING = 200
# Prometheus scrapes each server this often (local stack), and evaluates its rules as often.
PROMETHEUS_SCRAPE_SECONDS = 2
# The automatic canary analysis (serving/analysis.py), as Flagger's: every interval, the candidate's
# error rate and p99 latency over the interval against their bounds; `CANARY_FAILED_CHECKS` failed
# intervals roll it back, each healthy one adds `CANARY_STEP_PERCENT` up to `CANARY_MAX_PERCENT`, then it is
# promoted. Intervals without candidate traffic neither pass nor fail.
CANARY_INTERVAL_SECONDS = 10.0
CANARY_MAX_ERROR_RATE = 0.01
CANARY_MAX_P99_SECONDS = 0.05
CANARY_FAILED_CHECKS = 2
CANARY_STEP_PERCENT = 10.0
CANARY_MAX_PERCENT = 50.0

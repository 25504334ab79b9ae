"""Serving's settings (docs/serving.md): the model server, the request log, the local stack, the canary analysis."""

# The model's name in TF Serving's REST paths (/v1/models/taxi:predict).
SERVING_MODEL_NAME = "taxi"
# How often a model server looks for a new version in the serving directory, in seconds.
SERVING_POLL_SECONDS = 1.0
# The most trips one request may carry, and the largest body (nginx refuses larger ones the same way).
SERVING_MAX_BATCH = 1000
SERVING_MAX_BODY_BYTES = 1_000_000
# A model call of at most INLINE_CALL_MAX_TRIPS trips is made on the server's event loop, not handed to its
# model thread, when the model's last such call took at most INLINE_CALL_MAX_SECONDS (serving/batching.py):
# the production model answers a trip in ~0.2 ms, less than the hand-over costs; a slower model (the
# test's 0.2 s one, a shadow slowed to 50 ms) keeps its thread, and the loop keeps answering meanwhile.
INLINE_CALL_MAX_TRIPS = 10
INLINE_CALL_MAX_SECONDS = 0.002
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
# The routes a server counts and logs a request under, set by nginx (X-Route), never by a client: any
# other value is taken for the server's own label, so no client makes a new metric label.
ROUTES = ("stable", "canary", SHADOW_ROUTE, "previous")
# The content types a request body may declare (or none): JSON, and the form type curl's `-d` sends by
# default, whose body TF Serving reads as JSON too (the README's curl). Anything else is a 415.
ACCEPTED_CONTENT_TYPES = ("application/json", "application/x-www-form-urlencoded")
# The local stack (serving/stack.py): nginx's port (the base URL), Prometheus's; servers take free ports.
SERVING_PORT = 8500
PROMETHEUS_PORT = 9290
# The control listener (feedback, the monitor's figures, releases, the stack's probe): loopback only, bearer
# tokens.
CONTROL_PORT = 8501
# The release API on the control listener (serving/release_api.py): GET it for what is live, POST to
# RELEASES_PATH/<action> to release or roll back. A release waits for its version's servers to load (up to
# SERVING_START_SECONDS) and the old ones to drain, so nginx waits that long for its answer.
RELEASES_PATH = "/v1/releases"
RELEASE_ACTIONS = ("canary", "shadow", "switch", "promote", "rollback")
CONTROL_READ_TIMEOUT_SECONDS = 180
RELEASE_REASON_MAX_CHARACTERS = 500  # a rollback's reason, kept in the registry's record
# Each version runs as this many model-server processes behind one nginx upstream: one that dies or hangs
# costs no request (nginx retries it on another) while the supervisor (serving/supervisor.py) replaces it.
SERVER_PROCESSES = 2
# A server's port taken between its probe and its bind (a client's outgoing connection can take any
# ephemeral port) is replaced by another this many times in all before its start fails.
SERVER_PORT_ATTEMPTS = 3
# nginx gives up on a server that does not connect or answer in this long and retries the request on
# another (a SIGSTOPped server accepts connections but never answers). A 1,000-trip batch takes ~50 ms
# and the slow test version 0.2 s: 2 s leaves room on a loaded machine, and bounds what a hang costs.
UPSTREAM_CONNECT_TIMEOUT_MS = 250
UPSTREAM_READ_TIMEOUT_MS = 2000
# After a failure nginx sends a server nothing for this long (its replacement takes a few seconds).
UPSTREAM_FAIL_SECONDS = 3
# The supervisor checks every process's /ready this often, waits this long for an answer, and replaces
# a process that did not answer this many checks in a row (a dead one at once): a hung one within ~5 s.
SUPERVISOR_CHECK_SECONDS = 1.0
SUPERVISOR_READY_TIMEOUT_SECONDS = 1.0
SUPERVISOR_UNREADY_CHECKS = 3
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
# nginx's access log (serving/access_log.py): a JSON line per request nginx sent to a model server, which
# mtail turns into the metrics the canary analysis judges (what clients saw). Past ACCESS_LOG_MAX_BYTES
# (about 200,000 requests at ~250 bytes a line) it is rotated, one older file kept, so the stack's disk use
# is bounded; checked every ACCESS_LOG_CHECK_SECONDS (at 200 requests a second the log grows 0.5 MB in that
# time). mtail's start is a Go binary reading one small program: seconds, not minutes.
ACCESS_LOG_MAX_BYTES = 50_000_000
ACCESS_LOG_CHECK_SECONDS = 10.0
MTAIL_START_SECONDS = 30.0
# The automatic canary analysis (serving/analysis.py), with Flagger's semantics (docs/serving.md, "The
# canary analysis"): every interval, checks of the candidate over the interval, at nginx and in its server;
# a check without enough requests, without data or whose query failed is a failed check.
CANARY_INTERVAL_SECONDS = 10.0
# The bounds of the serving alerts TaxiModelHighErrorRate and TaxiModelSlow: a candidate is held to what
# stable is alerted on. Errors are server faults only (5xx, or a client that gave up waiting); 4xx never.
CANARY_MAX_ERROR_RATE = 0.01
CANARY_MAX_P99_SECONDS = 0.05
# Below ten requests a check is one client's luck; the loop's 10 % canary under the replay's 20 trips a
# second gets twenty in an interval.
CANARY_MIN_REQUESTS = 10
# Failed checks over the whole analysis (not in a row, as Flagger counts them) that roll the candidate back:
# one noisy interval is forgiven, a second is not; a dead candidate is back off traffic in two intervals.
CANARY_FAILED_CHECKS = 2
# Flagger's step weight and max weight: the candidate takes half the traffic before it is promoted.
CANARY_STEP_PERCENT = 10.0
CANARY_MAX_PERCENT = 50.0
# Not promoted within this many intervals: rolled back. The longest healthy ramp (from 1 % in 10-point
# steps to 50 %, then the promotion) takes 7 intervals; three more allow the one forgiven failed check and
# two actions (an nginx reload) that failed and were retried.
CANARY_PROGRESS_DEADLINE_INTERVALS = 10
# A local Prometheus answers the analysis's queries in milliseconds; one that takes two seconds is hung,
# and the check fails rather than the interval stretching.
CANARY_QUERY_TIMEOUT_SECONDS = 2.0

"""Load on the local stack, always bounded in count and time and only ever to 127.0.0.1.

- `Client`: one keep-alive HTTP connection, for requests one after another.
- `BackgroundLoad`: a thread sending requests back to back until stopped (or its caps), counting every
  answer by status: what the zero-failure tests run through a switch or a rollback.
- `open_loop`: requests sent on a fixed schedule, whether or not earlier ones have been answered, so a slow
  answer cannot hide the ones it delays (make bench-serve).
- `closed_loop`: a few connections each sending its next request as soon as the last is answered: the
  stack's throughput when it is kept busy (make bench-serve's batched figures).
"""

import asyncio
import dataclasses
import http.client
import json
import threading
import time
import urllib.parse

MAX_SECONDS = 600  # no load here runs longer, whatever it is asked


def _loopback(url: str) -> urllib.parse.SplitResult:
    parts = urllib.parse.urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"load is only ever sent to this machine's loopback address, not {parts.hostname}")
    return parts


class Client:
    """One keep-alive connection. A request on a reused connection that the server closed meanwhile (as
    nginx does to idle connections when it reloads) is sent again on a new one, once, as HTTP clients do
    (Go's net/http, browsers): the server never saw it. `retries` counts them."""

    def __init__(self, base_url: str, timeout: float = 10):
        self.parts = _loopback(base_url)
        self.timeout = timeout
        self.retries = 0
        self._connect()

    def _connect(self) -> None:
        self.connection = http.client.HTTPConnection(
            self.parts.hostname, self.parts.port, timeout=self.timeout
        )
        self.used = False

    def post(self, path: str, body, headers: dict | None = None) -> tuple[int, dict, dict]:
        """(status, JSON body, headers) of one request; `body` is JSON-encoded unless it is bytes."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
        try:
            self.connection.request("POST", path, data, headers)
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not self.used:
                raise
            self.retries += 1
            self.connection.close()
            self._connect()
            self.connection.request("POST", path, data, headers)
            response = self.connection.getresponse()
        self.used = True
        payload = response.read()
        try:
            decoded = json.loads(payload) if payload else {}
        except ValueError:
            decoded = {"raw": payload.decode(errors="replace")}
        return response.status, decoded, {k.lower(): v for k, v in response.getheaders()}

    def get(self, path: str) -> tuple[int, dict]:
        self.connection.request("GET", path)
        response = self.connection.getresponse()
        self.used = True
        return response.status, json.loads(response.read() or b"{}")

    def close(self) -> None:
        self.connection.close()


@dataclasses.dataclass
class Tally:
    statuses: dict[int, int] = dataclasses.field(default_factory=dict)
    versions: dict[str, int] = dataclasses.field(default_factory=dict)
    errors: list[str] = dataclasses.field(default_factory=list)
    retries: int = 0  # requests sent again on a new connection after nginx closed an idle one

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def failed(self) -> int:
        return sum(count for status, count in self.statuses.items() if status != 200) + len(self.errors)


class BackgroundLoad:
    """Sends `body` to `path` back to back from a thread until `stop()`, at most `max_requests`; a request
    not answered in `timeout` seconds is given up (an error in the tally), as a client's deadline would."""

    def __init__(self, base_url: str, path: str, body, max_requests: int = 100_000, max_seconds: float = 300,
                 timeout: float = 10):  # fmt: skip
        self.base_url, self.path, self.body, self.timeout = base_url, path, body, timeout
        self.max_requests, self.max_seconds = max_requests, min(max_seconds, MAX_SECONDS)
        self.tally = Tally()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "BackgroundLoad":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> Tally:
        self._stop.set()
        self._thread.join(timeout=30)
        return self.tally

    def _run(self) -> None:
        client = Client(self.base_url, self.timeout)
        deadline = time.monotonic() + self.max_seconds
        while (
            not self._stop.is_set() and self.tally.total < self.max_requests and time.monotonic() < deadline
        ):
            try:
                status, _, headers = client.post(self.path, self.body)
            except (OSError, http.client.HTTPException) as error:
                self.tally.errors.append(f"{type(error).__name__}: {error}")
                client.close()
                client = Client(self.base_url, self.timeout)
                continue
            self.tally.retries = client.retries
            self.tally.statuses[status] = self.tally.statuses.get(status, 0) + 1
            version = headers.get("x-model-version", "?")
            self.tally.versions[version] = self.tally.versions.get(version, 0) + 1
        client.close()


def open_loop(
    base_url: str, path: str, body, rate: float, seconds: float, max_connections: int = 256
) -> dict:
    """Sends `rate` requests a second for `seconds` on schedule; returns latencies (s) and outcomes.

    Each request's latency counts from when it was due, not from when a connection was free, so a
    server falling behind shows as latency rather than as a lower rate. One thread on an event loop
    (uvloop) with the request's bytes prepared once: the generator shares the machine with the stack it
    measures, so it spends as little CPU as it can (about 0.5 ms per request here). A connection goes
    back to the pool as soon as its answer is read, and the next request takes it: the worst case for
    nginx's `mirror`, which holds a connection until the shadow has answered.
    """
    import uvloop

    parts = _loopback(base_url)
    count = int(rate * min(seconds, MAX_SECONDS))
    request = _request_bytes(parts, path, body)
    return uvloop.run(_open_loop(parts.hostname, parts.port, request, rate, count, max_connections))


def closed_loop(base_url: str, path: str, body, connections: int, seconds: float) -> dict:
    """`connections` connections, each sending `body` again as soon as its last answer is read, for
    `seconds`: requests answered a second, and errors. One thread on uvloop, as `open_loop`."""
    import uvloop

    parts = _loopback(base_url)
    request = _request_bytes(parts, path, body)
    return uvloop.run(
        _closed_loop(parts.hostname, parts.port, request, connections, min(seconds, MAX_SECONDS))
    )


def _request_bytes(parts: urllib.parse.SplitResult, path: str, body) -> bytes:
    """The whole request, prepared once: the generator then spends its CPU on sending, not encoding."""
    data = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data


# A pooled connection idle this long is not reused: uvicorn closes keep-alive connections idle for 5 s,
# and a request written as the server closes one would fail for the generator's sake, not the server's.
IDLE_REUSE_SECONDS = 4.0


async def _open_loop(host: str, port: int, request: bytes, rate: float, count: int, max_connections: int):
    loop = asyncio.get_running_loop()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
    connections = asyncio.Semaphore(max_connections)
    start_loop, start = loop.time() + 0.2, time.perf_counter() + 0.2

    async def send(index: int) -> tuple[float, float, int]:
        """(latency, lag, status): the latency counts from when the timer fired, which the event loop's
        millisecond timers put up to a millisecond after the request was due (the lag, reported apart)."""
        await asyncio.sleep(max(0.0, start_loop + index / rate - loop.time()))
        woke = time.perf_counter()
        lag = max(0.0, woke - (start + index / rate))
        async with connections:  # waiting for a connection counts as latency
            connection = None
            while idle and connection is None:
                *connection, idle_since = idle.pop()
                if loop.time() - idle_since > IDLE_REUSE_SECONDS:
                    connection[1].close()
                    connection = None
            connection = connection or await asyncio.open_connection(host, port)
            try:
                status, keep_alive = await _exchange(*connection, request)
            except (OSError, ValueError, asyncio.IncompleteReadError):
                connection[1].close()
                return time.perf_counter() - woke, lag, -1
            if keep_alive:
                idle.append((*connection, loop.time()))
            else:
                connection[1].close()
            return time.perf_counter() - woke, lag, status

    results = await asyncio.gather(*(send(index) for index in range(count)))
    elapsed = max(time.perf_counter() - start, 1e-9)
    for _, writer, _ in idle:
        writer.close()
    lags = sorted(lag for _, lag, _ in results)
    return {
        "latencies": [latency for latency, _, status in results if status == 200],
        "errors": sum(1 for _, _, status in results if status != 200),
        "sent": count,
        "throughput": sum(1 for _, _, status in results if status == 200) / elapsed,
        "schedule_lag_p99": lags[int(0.99 * (len(lags) - 1))] if lags else 0.0,
    }


async def _closed_loop(host: str, port: int, request: bytes, connections: int, seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + seconds
    statuses: list[int] = []

    async def sender() -> None:
        connection = None
        while loop.time() < deadline:
            try:
                connection = connection or await asyncio.open_connection(host, port)
                status, keep_alive = await _exchange(*connection, request)
            except (OSError, ValueError, asyncio.IncompleteReadError):
                status, keep_alive = -1, False
                await asyncio.sleep(0.01)  # a server that is down is not hammered
            statuses.append(status)
            if not keep_alive and connection is not None:
                connection[1].close()
                connection = None
        if connection is not None:
            connection[1].close()

    await asyncio.gather(*(sender() for _ in range(connections)))
    elapsed = max(loop.time() - started, 1e-9)
    answered = sum(1 for status in statuses if status == 200)
    return {
        "answered": answered,
        "errors": len(statuses) - answered,
        "requests_per_second": answered / elapsed,
    }


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes):
    """Sends one request and reads its whole response: (status, whether the connection stays open)."""
    writer.write(request)
    status_line = await reader.readline()
    if not status_line:  # the server closed the connection instead of answering
        raise ConnectionResetError("connection closed before a status line")
    status = int(status_line.split(b" ", 2)[1])
    length, keep_alive = 0, True
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            keep_alive = value.strip().lower() != b"close"
    await reader.readexactly(length)
    return status, keep_alive

"""The load generators on a tiny HTTP server on loopback: counts, errors and the loopback-only rule."""

import http.server
import socket
import threading

import pytest

from clients import load


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the stack's servers

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = 500 if b"fail" in body else 200
        answer = b'{"ok": true}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        if b"close" in body:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_open_loop_sends_every_request_on_schedule_and_counts_failures(url):
    answered = load.open_loop(url, "/p", {"trip": 1}, rate=100, seconds=1)
    assert answered["sent"] == 100 and answered["errors"] == 0 and len(answered["latencies"]) == 100
    failing = load.open_loop(url, "/p", {"trip": "fail"}, rate=50, seconds=1)
    assert failing["sent"] == 50 and failing["errors"] == 50 and failing["latencies"] == []
    # A server closing each connection after its answer: every request is still sent and answered.
    closing = load.open_loop(url, "/p", {"trip": "close"}, rate=50, seconds=1)
    assert closing["errors"] == 0 and len(closing["latencies"]) == 50


def test_closed_loop_keeps_its_connections_busy_and_counts_failures(url):
    busy = load.closed_loop(url, "/p", {"trip": 1}, connections=3, seconds=1)
    assert busy["answered"] > 50 and busy["errors"] == 0 and busy["requests_per_second"] > 50
    failing = load.closed_loop(url, "/p", {"trip": "fail"}, connections=2, seconds=0.5)
    assert failing["answered"] == 0 and failing["errors"] > 0


def test_a_server_that_is_down_counts_as_errors_and_ends_the_load_on_time():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # nothing listens on it
    down = load.closed_loop(f"http://127.0.0.1:{port}", "/p", {}, connections=2, seconds=0.3)
    assert down["answered"] == 0 and down["errors"] > 0


def test_load_only_ever_goes_to_loopback():
    with pytest.raises(ValueError, match="only ever sent to this machine's loopback"):
        load.closed_loop("http://example.com:80", "/p", {}, connections=1, seconds=1)

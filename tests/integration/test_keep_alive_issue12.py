"""Issue 12: the production server configuration (config/gunicorn.conf.py, as the README
runs it) keeps HTTP/1.1 keep-alive connections open. With worker_connections equal to the
threads a gthread worker answered every response with ``Connection: close``, so a load
balancer's pool or a portal's HTTP library reconnected at every request. Checked here on
a live gunicorn with more concurrent connections than the worker has threads; how fast it
is belongs to bench/run.py (--client autocannon counts closes under load)."""

from __future__ import annotations

import http.client
import threading
from urllib.parse import urlsplit

# More than the worker's threads (YIWANG_THREADS, default 8): connections beyond them must
# wait for a thread, not be closed.
CONNECTIONS = 12
REQUESTS_EACH = 4


def _reuses_its_connection(base: str, results: list[tuple[int, int, bool]]) -> None:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
    conn.connect()
    sock = conn.sock
    closes = 0
    for _ in range(REQUESTS_EACH):
        conn.request("GET", "/.well-known/openid-configuration")
        resp = conn.getresponse()
        resp.read()
        if (resp.getheader("Connection") or "").lower() == "close":
            closes += 1
    results.append((resp.status, closes, conn.sock is sock))
    conn.close()


def test_keep_alive_connections_are_held_not_closed(live_idp):
    results: list[tuple[int, int, bool]] = []
    # All connections open at once and stay open, as a client pool's do.
    threads = [threading.Thread(target=_reuses_its_connection, args=(live_idp.base_url, results))
               for _ in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(results) == CONNECTIONS
    assert all(status == 200 for status, _, _ in results)
    assert [closes for _, closes, _ in results] == [0] * CONNECTIONS
    # The same socket served every request of its connection.
    assert all(same for _, _, same in results)

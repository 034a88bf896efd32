"""gunicorn configuration: ``gunicorn -c config/gunicorn.conf.py wsgi:app``.

Workers come from YIWANG_WORKERS (the settings object checks the same variable and
refuses several workers without Redis); the bind address from YIWANG_BIND."""

import os

bind = os.environ.get("YIWANG_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("YIWANG_WORKERS", "1"))
# Threads overlap database and Redis round trips; CPU work (signatures, argon2id)
# scales with workers: one worker per core (more workers than cores add scheduling
# delays to the p99 under full load, measured in bench/).
worker_class = os.environ.get("YIWANG_WORKER_CLASS", "gthread")
threads = int(os.environ.get("YIWANG_THREADS", "8"))
# A gthread worker accepts connections up to worker_connections, not up to its threads:
# with the default (1000) one worker can take every keep-alive connection of a load
# balancer while the others idle, and connections beyond the threads wait in the
# worker's queue (both seen in the benchmark: p99 in the hundreds of ms). One connection
# per thread spreads them and keeps the tail short; put a proxy with a connection pool
# (nginx upstream keepalive) in front.
worker_connections = int(os.environ.get("YIWANG_WORKER_CONNECTIONS", str(threads)))
timeout = 30
graceful_timeout = 20
keepalive = 5
# Our JSON request log replaces gunicorn's access log (which would print query strings
# holding codes and state).
accesslog = None
errorlog = "-"
loglevel = os.environ.get("YIWANG_LOG_LEVEL", "info").lower()
# Trust X-Forwarded-* only from the proxy; the app applies ProxyFix with
# YIWANG_TRUSTED_PROXIES hops.
forwarded_allow_ips = os.environ.get("YIWANG_FORWARDED_ALLOW_IPS", "127.0.0.1")
# Recycle workers rarely: each restart starts with cold key and client caches (bench/README.md).
max_requests = 500000
max_requests_jitter = 50000


def on_starting(server):  # type: ignore[no-untyped-def]
    # DESIGN.md §3: the in-process store is per process; several workers without Redis
    # would each see different sessions and codes. Refuse, whichever way -w was given.
    if server.cfg.workers > 1 and not os.environ.get("YIWANG_REDIS_URL"):
        raise SystemExit("yiwang: several gunicorn workers need YIWANG_REDIS_URL (the in-process store is per process)")

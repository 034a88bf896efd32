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
# Keep-alive (issue 12). A gthread worker keeps at most worker_connections - threads idle
# keep-alive connections; at worker_connections = threads that is none, so it answered
# every response with `Connection: close` and keep-alive clients (load balancers' pools,
# portals' HTTP libraries) reconnected at every request and queued in the listen backlog
# (p50 ~2 s, bench/RESULTS.md "Keep-alive clients"). gunicorn's own default, 1000, holds
# them: measured with a keep-alive client at 16, 64 and 256 connections there were no
# closes and the two workers' shares stayed close. Connections beyond the threads wait
# for a free thread in the worker that accepted them.
worker_connections = int(os.environ.get("YIWANG_WORKER_CONNECTIONS", "1000"))
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

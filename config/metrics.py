"""Prometheus metrics: per-endpoint request counts and latency, logins, tokens issued.

Each process keeps its own registry; with several gunicorn workers the multiprocess
mode is used when ``PROMETHEUS_MULTIPROC_DIR`` is set (see README, production)."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class PrometheusMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "yiwang_http_requests", "HTTP requests by endpoint and status", ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "yiwang_http_request_duration_seconds", "Request latency by endpoint", ["endpoint"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.registry,
        )
        self.logins = Counter("yiwang_logins", "Password logins by outcome", ["outcome"], registry=self.registry)
        self.tokens = Counter("yiwang_tokens_issued", "Tokens issued by grant type", ["grant_type"], registry=self.registry)

    def login(self, ok: bool) -> None:
        self.logins.labels("success" if ok else "failure").inc()

    def token_issued(self, grant_type: str) -> None:
        self.tokens.labels(grant_type).inc()

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)

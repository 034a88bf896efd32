"""Prometheus metrics: per-endpoint request counts and latency, logins, tokens issued, and
the audit trail's alerts and status (issue 6).

Each process keeps its own registry; with several gunicorn workers the multiprocess
mode is used when ``PROMETHEUS_MULTIPROC_DIR`` is set (see README, production).

Audit alerts are not counters kept by each worker (a worker sees only its own requests,
and a burst spread over instances would go unnoticed): they are computed at scrape time
from the shared trail with the bounded, indexed window queries of ``admin.audit``, and
reused for ``alert_metrics_cache_seconds`` so frequent scrapes cost one computation."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from admin.audit import ALERT_KINDS, Alert, TrailStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditSnapshot:
    alerts: list[Alert]
    status: TrailStatus


class AuditCollector(Collector):
    """Scrape-time audit gauges from ``source`` (called inside the /metrics request, so it
    may use the request's database session). A failing source yields
    ``yiwang_audit_metrics_up 0`` instead of failing the whole scrape."""

    def __init__(self, source: Callable[[], AuditSnapshot], cache_seconds: int,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self._cache_seconds = cache_seconds
        self._now = now
        self._cached: tuple[float, AuditSnapshot] | None = None

    def _snapshot(self) -> AuditSnapshot:
        now = self._now()
        if self._cached is None or now - self._cached[0] >= self._cache_seconds:
            self._cached = (now, self._source())
        return self._cached[1]

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("yiwang_audit_metrics_up", "1 when the audit alert queries succeeded")
        try:
            snap = self._snapshot()
        except Exception:  # noqa: BLE001 - a database hiccup must not break the whole scrape
            log.warning("audit metrics unavailable", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _alert_metrics(snap.alerts)
        yield from _status_metrics(snap.status)


def _alert_metrics(alerts: list[Alert]) -> Iterator[Metric]:
    active = GaugeMetricFamily("yiwang_audit_alerts", "Active audit alerts (keys over threshold) by kind", labels=["kind"])
    for kind in ALERT_KINDS:
        active.add_metric([kind], sum(1 for a in alerts if a.kind == kind))
    yield active
    # Per client only (a bounded, non-personal label set); accounts and IPs stay in the console.
    per_client = GaugeMetricFamily("yiwang_audit_alert_client_events",
                                   "Events in the alert window of clients over an alert threshold",
                                   labels=["kind", "client_id"])
    for a in alerts:
        if a.key.startswith("client:"):
            per_client.add_metric([a.kind, a.key.removeprefix("client:")], a.count)
    yield per_client


def _status_metrics(status: TrailStatus) -> Iterator[Metric]:
    yield GaugeMetricFamily("yiwang_audit_events_retained", "Audit events kept (all chains)",
                            value=status.events_retained)
    if status.last_checkpoint_at is not None:
        yield GaugeMetricFamily("yiwang_audit_last_checkpoint_timestamp_seconds", "Time of the last signed checkpoint",
                                value=status.last_checkpoint_at.timestamp())
    if status.last_verification_at is not None:
        yield GaugeMetricFamily("yiwang_audit_last_verification_timestamp_seconds",
                                "Time of the last recorded `audit verify --record`",
                                value=status.last_verification_at.timestamp())
        yield GaugeMetricFamily("yiwang_audit_last_verification_ok", "1 when the last recorded verification passed",
                                value=1 if status.last_verification_ok else 0)


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
        self.audit: AuditCollector | None = None

    def login(self, ok: bool) -> None:
        self.logins.labels("success" if ok else "failure").inc()

    def token_issued(self, grant_type: str) -> None:
        self.tokens.labels(grant_type).inc()

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def watch_audit(self, source: Callable[[], AuditSnapshot], cache_seconds: int) -> None:
        """Export the audit alerts and status computed by ``source`` at scrape time."""
        self.audit = AuditCollector(source, cache_seconds)

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = self.registry
        if self.audit is None:
            return generate_latest(registry)
        # The audit gauges come from the shared database, not from this process: added per
        # scrape, never merged through the multiprocess files.
        extra = CollectorRegistry()
        extra.register(self.audit)
        return generate_latest(registry) + generate_latest(extra)

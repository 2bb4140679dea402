"""Prometheus metrics. Each server process exposes its own; Prometheus sums them per instance."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

HTTP_REQUESTS = Counter(
    "wxbackend_http_requests_total", "HTTP requests answered", ["route", "method", "status"])
HTTP_LATENCY = Histogram(
    "wxbackend_http_request_duration_seconds", "Time to answer an HTTP request", ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
WECHAT_CALLS = Counter(
    "wxbackend_wechat_api_calls_total", "Calls made to the WeChat API", ["endpoint", "outcome"])
WECHAT_ERRORS = Counter(
    "wxbackend_wechat_api_errors_total", "WeChat API error answers by errcode",
    ["endpoint", "errcode"])
WECHAT_PUSHES = Counter(
    "wxbackend_wechat_pushes_total", "Official Account pushes by outcome", ["outcome"])
OUTBOX_DEPTH = Gauge(
    "wxbackend_outbox_depth", "Outbox rows by status (read at scrape time)", ["status"])
OUTBOX_SENT = Counter(
    "wxbackend_outbox_deliveries_total", "Outbox delivery attempts by result", ["kind", "result"])
LEDGER_APPENDED = Counter(
    "wxbackend_ledger_entries_appended_total", "Entries appended to the base-data ledger")
LEDGER_SIZE = Gauge("wxbackend_ledger_size", "Entries in the base-data ledger as last signed")
LEDGER_ALARMS = Counter(
    "wxbackend_ledger_alarms_total", "Ledger checks that failed (forks, bad tiles, bad proofs)",
    ["source", "kind"])
NODE_SIZE = Gauge("wxbackend_node_verified_size", "Entries a ledger node holds verified", ["origin"])
NODE_LAG = Histogram(
    "wxbackend_node_lag_seconds", "From a checkpoint's signing to the node holding it verified",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60))


_request_children: dict[tuple[str, str, str], tuple] = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request. Label children are looked up once per (route, method,
    status): ``labels()`` takes a lock and builds a key, a measurable cost per request."""
    key = (route, method, str(status))
    children = _request_children.get(key)
    if children is None:
        children = _request_children.setdefault(
            key, (HTTP_REQUESTS.labels(*key), HTTP_LATENCY.labels(route)))
    children[0].inc()
    children[1].observe(seconds)


def render() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST

"""Request ids, one structured log line per request, and Prometheus metrics.

Log lines carry the route template, never the query string (it may hold keys) nor bodies.
Metric labels come from a fixed set of route names, so clients cannot grow them.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections import defaultdict

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("amend.http")

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_CE_LOGIN = re.compile(r"/1/ce/[^/]+/login")
_CE = re.compile(r"/1/ce/[^/]+")
FIXED_ROUTES = {
    "/graphql",
    "/api/user/v1/update",
    "/api/user/v1/login",
    "/me",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
}


def route_name(path: str) -> str:
    if path in FIXED_ROUTES:
        return path
    if _CE_LOGIN.fullmatch(path):
        return "/1/ce/{endpoint}/login"
    if _CE.fullmatch(path):
        return "/1/ce/{endpoint}"
    return "other"


class Metrics:
    """In-process counters and latency histograms (per worker), in the text format."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.throttled: dict[str, int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * len(BUCKETS))
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def observe(
        self, route: str, method: str, status: int, seconds: float, throttled: bool
    ) -> None:
        self.requests[(route, method, f"{status // 100}xx")] += 1
        if throttled:
            self.throttled[route] += 1
        counts = self.buckets[route]
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                counts[i] += 1
        self.sums[route] += seconds
        self.counts[route] += 1

    def render(self, gauges: dict[str, tuple[str, float]]) -> str:
        lines = [
            "# HELP amend_http_requests_total HTTP requests by route, method and status class.",
            "# TYPE amend_http_requests_total counter",
        ]
        for (route, method, status), n in sorted(self.requests.items()):
            lines.append(
                f'amend_http_requests_total{{route="{route}",method="{method}",'
                f'status="{status}"}} {n}'
            )
        lines += [
            "# HELP amend_throttled_requests_total Requests refused by a throttle (Retry-After).",
            "# TYPE amend_throttled_requests_total counter",
        ]
        for route, n in sorted(self.throttled.items()):
            lines.append(f'amend_throttled_requests_total{{route="{route}"}} {n}')
        lines += [
            "# HELP amend_http_request_duration_seconds Request latency by route.",
            "# TYPE amend_http_request_duration_seconds histogram",
        ]
        name = "amend_http_request_duration_seconds"
        for route in sorted(self.counts):
            for bound, n in zip(BUCKETS, self.buckets[route], strict=True):
                lines.append(f'{name}_bucket{{route="{route}",le="{bound}"}} {n}')
            lines.append(
                f'amend_http_request_duration_seconds_bucket{{route="{route}",le="+Inf"}} '
                f"{self.counts[route]}"
            )
            lines.append(
                f'amend_http_request_duration_seconds_sum{{route="{route}"}} {self.sums[route]:.6f}'
            )
            lines.append(
                f'amend_http_request_duration_seconds_count{{route="{route}"}} {self.counts[route]}'
            )
        for name, (help_text, value) in sorted(gauges.items()):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get("x-request-id", "")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        start = time.perf_counter()
        status = 500
        throttled = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, throttled
            if message["type"] == "http.response.start":
                status = message["status"]
                raw = message["headers"] = [
                    h for h in message.get("headers", ()) if h[0].lower() != b"x-request-id"
                ]
                raw.append((b"x-request-id", request_id.encode("latin-1")))
                throttled = status != 503 and any(h[0].lower() == b"retry-after" for h in raw)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = route_name(scope["path"])
            self.metrics.observe(route, scope["method"], status, elapsed, throttled)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )

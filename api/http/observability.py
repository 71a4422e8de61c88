"""Request ids, route names and Prometheus metrics; `api.http.edge` uses them to count and
log every request (one structured line each).

Log lines carry the route template, never the query string (it may hold keys) nor bodies.
Metric labels come from a fixed set of route names, so clients cannot grow them.
"""

from __future__ import annotations

import bisect
import itertools
import re
import secrets

REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
# Generated ids: a random per-process prefix and a counter, 32 hex digits. Unique is all a
# request id needs to be; this spares a system call for randomness on every request.
_ID_PREFIX = secrets.token_hex(8).encode()
_ID_COUNTER = itertools.count(1)


def new_request_id() -> bytes:
    return _ID_PREFIX + b"%016x" % next(_ID_COUNTER)


_CLASSES = tuple(f"{kind}xx" for kind in range(6))  # status class labels, "0xx" to "5xx"
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


class _RouteCounts:
    """What one route has answered: by method and status class, and how long it took."""

    __slots__ = ("buckets", "by_status", "count", "sum", "throttled")

    def __init__(self) -> None:
        self.by_status: dict[tuple[str, int], int] = {}  # (method, status // 100) -> count
        self.throttled = 0
        self.buckets = [0] * len(BUCKETS)  # per bucket; `render` makes them cumulative
        self.sum = 0.0
        self.count = 0


class Metrics:
    """In-process counters and latency histograms (per worker), in the text format."""

    def __init__(self) -> None:
        self._routes: dict[str, _RouteCounts] = {}

    def observe(
        self, route: str, method: str, status: int, seconds: float, throttled: bool
    ) -> None:
        # One record per route: every request is counted, so this is on every hot path.
        counts = self._routes.get(route)
        if counts is None:
            counts = self._routes[route] = _RouteCounts()
        key = (method, status // 100)
        counts.by_status[key] = counts.by_status.get(key, 0) + 1
        if throttled:
            counts.throttled += 1
        index = bisect.bisect_left(BUCKETS, seconds)
        if index < len(BUCKETS):
            counts.buckets[index] += 1
        counts.sum += seconds
        counts.count += 1

    def render(self, gauges: dict[str, tuple[str, float]]) -> str:
        routes = sorted(self._routes.items())
        lines = [
            "# HELP amend_http_requests_total HTTP requests by route, method and status class.",
            "# TYPE amend_http_requests_total counter",
        ]
        requests = sorted(
            ((route, method, _status_class(kind)), n)
            for route, counts in routes
            for (method, kind), n in counts.by_status.items()
        )
        for (route, method, status), n in requests:
            lines.append(
                f'amend_http_requests_total{{route="{route}",method="{method}",'
                f'status="{status}"}} {n}'
            )
        lines += [
            "# HELP amend_throttled_requests_total Requests refused by a throttle (Retry-After).",
            "# TYPE amend_throttled_requests_total counter",
        ]
        for route, counts in routes:
            if counts.throttled:
                lines.append(
                    f'amend_throttled_requests_total{{route="{route}"}} {counts.throttled}'
                )
        lines += [
            "# HELP amend_http_request_duration_seconds Request latency by route.",
            "# TYPE amend_http_request_duration_seconds histogram",
        ]
        name = "amend_http_request_duration_seconds"
        for route, counts in routes:
            for bound, n in zip(BUCKETS, itertools.accumulate(counts.buckets), strict=True):
                lines.append(f'{name}_bucket{{route="{route}",le="{bound}"}} {n}')
            lines.append(f'{name}_bucket{{route="{route}",le="+Inf"}} {counts.count}')
            lines.append(f'{name}_sum{{route="{route}"}} {counts.sum:.6f}')
            lines.append(f'{name}_count{{route="{route}"}} {counts.count}')
        for name, (help_text, value) in sorted(gauges.items()):
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"


def _status_class(kind: int) -> str:
    return _CLASSES[kind] if 0 <= kind < 6 else f"{kind}xx"

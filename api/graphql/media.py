"""GraphQL over HTTP: which media type answers a request, and which results failed early.

The GraphQL-over-HTTP specification answers `application/graphql-response+json` to a client
whose `Accept` prefers it; there a request that never reached execution (it did not parse,
validate, or its variables did not coerce) answers 400, so HTTP tooling can tell it from an
executed operation. Under the legacy `application/json` such a request answers 200. Either
way its body has no `data` entry: the GraphQL spec leaves `data` out when execution did not
start, where `"data": null` means it started and a non-null root field failed.
"""

from __future__ import annotations

from collections.abc import Sequence

from graphql import GraphQLError

GRAPHQL_RESPONSE = b"application/graphql-response+json"
JSON = b"application/json"
# The response header values (the spec's examples name the charset).
GRAPHQL_RESPONSE_TYPE = b"application/graphql-response+json; charset=utf-8"
JSON_TYPE = b"application/json"


def _quality(accept: bytes, media_type: bytes) -> tuple[float, int]:
    """The `q` the Accept header gives `media_type`, and how specific the matching range is
    (2 exact, 1 `application/*`, 0 `*/*`, -1 no match)."""
    best: tuple[int, float] = (-1, 0.0)
    main = media_type.split(b"/", 1)[0]
    for item in accept.split(b","):
        kind, *params = (part.strip() for part in item.split(b";"))
        kind = kind.lower()
        if kind == media_type:
            specificity = 2
        elif kind == main + b"/*":
            specificity = 1
        elif kind == b"*/*":
            specificity = 0
        else:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition(b"=")
            if name.strip().lower() == b"q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if specificity > best[0]:
            best = (specificity, q)
    return best[1], best[0]


def prefers_graphql_response(accept: bytes | None) -> bool:
    """True when the client named `application/graphql-response+json` itself and does not
    rate `application/json` higher. `*/*` or no Accept at all keeps `application/json`."""
    if not accept:
        return False
    q, specificity = _quality(accept, GRAPHQL_RESPONSE)
    if specificity < 2 or q <= 0:
        return False
    return q >= _quality(accept, JSON)[0]


def failed_before_execution(data: object, errors: Sequence[GraphQLError] | None) -> bool:
    """A result without data whose errors carry no path never executed a field: the
    document did not parse or validate, or the variables did not coerce (graphql-core
    reports those from `execute` without a path)."""
    return data is None and bool(errors) and all(error.path is None for error in errors or ())

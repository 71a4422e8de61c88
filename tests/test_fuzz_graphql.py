"""Property-based fuzzing of `POST /graphql` from the checked-in `schema.graphql`.

hypothesis-graphql generates documents (queries and mutations, valid ones and ones with a
schema violation) for every root field; each is sent over HTTP to the ASGI app with a random
mix of credentials: a fresh user's token, the project's API key, its master key, or none.
Most documents are "steered": arguments the service looks up (`endpoint`, `uniqueId`, `id`,
`identifier`, `password`, ...) get values that exist, so the fuzzer gets past the lookups into
the handlers instead of stopping at `INVALID_ENDPOINT`.

Every response must be one the API documents: HTTP 200 (or 400/413/415 for a request the
transport refuses), never 5xx; a JSON body; every error either GraphQL's own (syntax,
validation, variable coercion: raised before anything executes, so without a `path`) or one of
ours with an `extensions.code` (and `reason`) from the catalogue; never a masked
"Unexpected error." and never a fragment of a traceback or of a database driver's message.

Every query and mutation field is generated; only `Subscription` is left out (it is served over
WebSocket, not by `POST /graphql`; `tests/test_realtime.py` covers it). The run is fixed and
reproducible; `FUZZ_EXAMPLES=5000 FUZZ_RANDOM=1` explores further.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
from pathlib import Path
from typing import Any

import graphql
import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

from api.core.errors import Reason
from api.graphql.errors import GRAPHQL_CODES
from tests.conftest import PASSWORD, ProjectKeys
from tests.gql import Account, sign_up

SCHEMA = (Path(__file__).resolve().parent.parent / "schema.graphql").read_text()
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    # One app and one database serve every example of a test: that is the point (state
    # accumulates as it would on a real server), not an accident.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize="FUZZ_RANDOM" not in os.environ,
    database=None,
)
# The generous throttle lets the fuzzer reach the handlers (the throttle is tested elsewhere).
UNTHROTTLED = {
    "AMEND_SIGNIN_MAX_FAILURES": "1000000",
    "AMEND_SIGNIN_MAX_FAILURES_PER_IP": "1000000",
    "AMEND_CREDENTIAL_CHANGES_PER_WINDOW": "1000000",
    "AMEND_SIGNUPS_PER_IP": "1000000",
}
pytestmark = pytest.mark.parametrize("settings_env", [UNTHROTTLED], indirect=True)

# Top-level `extensions.code` values the service emits (SPEC §6, §8), and the 413 envelope's.
CODES = {code for code in GRAPHQL_CODES.values() if code} | {"BAD_REQUEST", "PAYLOAD_TOO_LARGE"}
REASONS = {reason.value for reason in Reason}
LEAKS = re.compile(r"Traceback|File \"|sqlalchemy|sqlite|asyncpg|psycopg", re.IGNORECASE)
MASKED = "Unexpected error."

# --------------------------------------------------------------------------- the JSON scalar

_NAME = st.from_regex(r"[_A-Za-z][_0-9A-Za-z]{0,12}", fullmatch=True)
# Keys the service treats specially somewhere, so they come up often.
_SPECIAL_KEYS = st.sampled_from(
    [
        "username",
        "password",
        "email",
        "email_verified",
        "emailVerified",
        "two_factor_enabled",
        "version",
        "created_at",
        "password_hash",
        "unique_id",
    ]
)
_TEXT = st.text(st.characters(codec="utf-8", max_codepoint=0xFFFF), max_size=40)
_SCALARS = st.one_of(
    _TEXT.map(nodes.String),
    st.integers(min_value=-(2**53), max_value=2**53).map(nodes.Int),
    st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
    st.booleans().map(nodes.Boolean),
    st.just(graphql.NullValueNode()),
)


def _object(children: st.SearchStrategy[graphql.ValueNode]) -> st.SearchStrategy[Any]:
    fields = st.lists(
        st.tuples(_SPECIAL_KEYS | _NAME, children),
        max_size=5,
        unique_by=lambda kv: kv[0],
    )
    return fields.map(
        lambda kvs: nodes.Object(
            [graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v) for k, v in kvs]
        )
    )


JSON_VALUES = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=4).map(nodes.List) | _object(children),
    max_leaves=12,
)
# Custom data is an object most of the time, as the service expects; other values too.
JSON_SCALAR = st.one_of(_object(JSON_VALUES), JSON_VALUES)
CUSTOM_SCALARS = {"JSON": JSON_SCALAR}

_SDL = graphql.build_schema(SCHEMA)


def _operations(kind: Any, root: graphql.GraphQLObjectType | None, mode: Mode) -> Any:
    """Documents of one root type: often one root field alone (a top-level error in one
    field nulls the whole `data`, which would hide what the other fields do), sometimes any
    subset of them."""
    assert root is not None
    options = dict(custom_scalars=CUSTOM_SCALARS, print_ast=lambda doc: doc, mode=mode)
    # A field without arguments has nothing to violate.
    names = [n for n, f in root.fields.items() if mode is Mode.POSITIVE or f.args]
    single = [kind(SCHEMA, fields=[name], **options) for name in names]
    return st.one_of(*single, kind(SCHEMA, **options))


QUERIES = _operations(queries, _SDL.query_type, Mode.POSITIVE)
MUTATIONS = _operations(mutations, _SDL.mutation_type, Mode.POSITIVE)
NEGATIVE = _operations(queries, _SDL.query_type, Mode.NEGATIVE) | _operations(
    mutations, _SDL.mutation_type, Mode.NEGATIVE
)

# --------------------------------------------------------------------------- steering

STEERABLE = ("endpoint", "uniqueId", "id", "identifier", "password", "currentPassword", "email")


def _steer(node: Any, values: dict[str, str]) -> Any:
    """A copy of `node` where arguments and input fields named in `values` hold those values
    (only where the generated value is a string: a violation stays a violation)."""
    if isinstance(node, graphql.ArgumentNode | graphql.ObjectFieldNode):
        if node.name.value in values and isinstance(node.value, graphql.StringValueNode):
            return dataclasses.replace(
                node, value=graphql.StringValueNode(value=values[node.name.value])
            )
        return dataclasses.replace(node, value=_steer(node.value, values))
    if not isinstance(node, graphql.Node):
        return node
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(node):
        if f.name == "loc":
            continue
        value = getattr(node, f.name)
        if isinstance(value, tuple):
            changes[f.name] = tuple(_steer(v, values) for v in value)
        elif isinstance(value, graphql.Node):
            changes[f.name] = _steer(value, values)
    return dataclasses.replace(node, **changes) if changes else node


@dataclasses.dataclass
class Target:
    """The app under fuzzing: a project, a long-lived other user, fresh users on demand."""

    client: httpx.AsyncClient
    project: ProjectKeys
    other: Account
    counter: itertools.count[int]

    async def fresh_account(self) -> Account:
        account = await sign_up(self.client, self.project.api_key, f"fuzz{next(self.counter)}")
        self.client.cookies.clear()
        return account


@pytest.fixture
async def target(client: httpx.AsyncClient, project: ProjectKeys) -> Target:
    other = await sign_up(client, project.api_key, "other")
    client.cookies.clear()
    return Target(client, project, other, itertools.count())


CREDENTIALS = st.fixed_dictionaries(
    {
        # Working credentials first: Hypothesis favours early choices, so most documents
        # reach the resolvers, and the others probe each refusal.
        "token": st.sampled_from(["bearer", "x-access-token", "cookie", "none", "garbage"]),
        "api_key": st.sampled_from(["header", "query", "none", "wrong"]),
        "master_key": st.sampled_from(["none", "none", "none", "header", "query", "wrong"]),
        # Which of the steerable arguments get real values.
        "steer": st.just(set(STEERABLE)) | st.sets(st.sampled_from(STEERABLE)),
        # Whose record `uniqueId` names: the caller's or another user's.
        "victim": st.booleans(),
    }
)


async def _send(target: Target, document: graphql.DocumentNode, plan: dict[str, Any]) -> None:
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    account: Account | None = None
    if plan["token"] != "none" or {"uniqueId", "id", "identifier"} & plan["steer"]:
        account = await target.fresh_account()
    if account is not None:
        token = account.token if plan["token"] != "garbage" else account.token[:-4] + "AAAA"
        if plan["token"] in ("bearer", "garbage"):
            headers["Authorization"] = f"Bearer {token}"
        elif plan["token"] == "x-access-token":
            headers["X-Access-Token"] = token
        elif plan["token"] == "cookie":
            headers["Cookie"] = f"access_token={token}"
    key = {"wrong": "ak_" + "x" * 32}.get(plan["api_key"], target.project.api_key)
    if plan["api_key"] in ("header", "wrong"):
        headers["X-API-Key"] = key
    elif plan["api_key"] == "query":
        params["key"] = key
    master = {"wrong": "mk_" + "x" * 43}.get(plan["master_key"], target.project.master_key)
    if plan["master_key"] in ("header", "wrong"):
        headers["X-Master-Key"] = master
    elif plan["master_key"] == "query":
        params["masterKey"] = master

    owner = target.other if plan["victim"] or account is None else account
    values = {
        "endpoint": "users",
        "uniqueId": owner.unique_id,
        "id": account.session_id if account else target.other.session_id,
        "identifier": account.username if account else "other",
        "password": PASSWORD,
        "currentPassword": PASSWORD,
        "email": f"{account.username if account else 'x'}-{next(target.counter)}@example.com",
    }
    steered = _steer(document, {k: v for k, v in values.items() if k in plan["steer"]})
    query = graphql.print_ast(steered)

    target.client.cookies.clear()
    response = await target.client.post(
        "/graphql",
        json={"query": query},
        headers=headers,
        params=params,
    )
    target.client.cookies.clear()
    check(response, query)


def check(response: httpx.Response, query: str) -> None:
    context = f"\n--- document:\n{query}\n--- response {response.status_code}:\n{response.text}"
    assert response.status_code in (200, 400, 413, 415), context
    assert response.headers.get("content-type", "").startswith("application/json"), context
    body = orjson.loads(response.content)
    assert isinstance(body, dict), context
    for error in body.get("errors") or []:
        message = error.get("message", "")
        assert message != MASKED, context
        assert not LEAKS.search(message), context
        extensions = error.get("extensions") or {}
        if "code" in extensions:
            assert extensions["code"] in CODES, context
            if "reason" in extensions:
                assert extensions["reason"] in REASONS, context
        else:
            # GraphQL's own refusal (syntax, validation, coercion): before execution, no path.
            assert "path" not in error or error["path"] is None, context
    for user_error in _payload_errors(body.get("data")):
        if "code" in user_error:  # selected by the document
            assert user_error["code"] in REASONS, context
        assert not LEAKS.search(user_error.get("message") or ""), context


def _payload_errors(data: Any) -> list[dict[str, Any]]:
    """The entries of every payload's `errors: [UserError!]!` (payloads are root fields; a
    deeper `errors` key could be custom data)."""
    if not isinstance(data, dict):
        return []
    return [
        error
        for payload in data.values()
        if isinstance(payload, dict) and isinstance(payload.get("errors"), list)
        for error in payload["errors"]
        if isinstance(error, dict)
    ]


# --------------------------------------------------------------------------- the properties


@FUZZ
@given(document=QUERIES, plan=CREDENTIALS)
async def test_generated_queries_never_fail_unexpectedly(
    target: Target, document: graphql.DocumentNode, plan: dict[str, Any]
) -> None:
    await _send(target, document, plan)


@FUZZ
@given(document=MUTATIONS, plan=CREDENTIALS)
async def test_generated_mutations_never_fail_unexpectedly(
    target: Target, document: graphql.DocumentNode, plan: dict[str, Any]
) -> None:
    await _send(target, document, plan)


@FUZZ
@given(document=NEGATIVE, plan=CREDENTIALS)
async def test_documents_violating_the_schema_are_refused_as_client_errors(
    target: Target, document: graphql.DocumentNode, plan: dict[str, Any]
) -> None:
    await _send(target, document, plan)

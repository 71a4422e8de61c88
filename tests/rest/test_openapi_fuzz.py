"""The REST routes answer as their OpenAPI document (`GET /openapi.json`) says.

Schemathesis generates requests for every operation of the document (valid and invalid ones)
and sends them over real HTTP to a real `amend serve` process. Three cases in four carry working
credentials (the project's API key, a signed-up user's token or the master key) and most of
those the user's record and password, so the fuzzer gets past authentication into the handlers.
Every response must have a documented status, content type, headers and body. The statuses
generated input rarely reaches (413, 429) are provoked on purpose and checked the same way.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import Case, Response
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.rest.openapi import openapi_document
from api.rest.routes import ROUTES
from tests.conftest import CHEAP_ARGON2, PASSWORD, SECRET

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}
MAX_EXAMPLES = 25
# The service's body limit: small, so that a modest body meets the 413 of each API.
MAX_BODY_BYTES = 2048
NEW_PASSWORD = "Fresh-pass-42"
# Fixed, so a run is reproducible; change it to explore other inputs.
SEED = 20240101

# Carriers of credentials a case may have generated; replaced when the case gets real ones.
CREDENTIAL_HEADERS = {"authorization", "x-access-token", "x-api-key", "x-master-key"}
CREDENTIAL_QUERY = {"key", "masterKey"}
# The record operations that take the owner's token or the master key.
OWNER_OR_MASTER = {("GET", "/1/ce/{endpoint}"), ("PUT", "/1/ce/{endpoint}")}
# Operations that can rename the user, or revoke every session (a credential change).
CHANGING = {
    ("PUT", "/1/ce/{endpoint}"),
    ("PUT", "/api/user/v1/update"),
    ("POST", "/api/user/v1/update"),
    ("PATCH", "/me"),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMEND_")}
    env.update(CHEAP_ARGON2)
    env["AMEND_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}"
    env["AMEND_SECRET_KEY"] = SECRET
    env["AMEND_LOG_LEVEL"] = "warning"
    env["AMEND_MAX_BODY_BYTES"] = str(MAX_BODY_BYTES)
    return env


@dataclass
class Service:
    """A running `amend serve`, its project's keys, and a signed-in user."""

    base_url: str
    api_key: str
    master_key: str
    username: str = ""
    token: str = ""
    unique_id: str = ""

    def sign_up(self) -> None:
        """A new user with a fresh session (after a case revoked the previous one)."""
        self.username = f"fuzz-{secrets.token_hex(6)}"
        r = httpx.post(
            f"{self.base_url}/1/ce/users",
            params={"key": self.api_key},
            json={"username": self.username, "password": PASSWORD},
            timeout=10,
        )
        assert r.status_code == 201, r.text
        self.token = r.headers["authorization"].removeprefix("Bearer ")
        self.unique_id = r.json()["uniqueId"]

    def present(self, case: Case) -> int:
        """Give three cases in four working credentials (the way: 1 to 3; 0 leaves the case as
        generated), and most of those the user's record, and a valid password or sign-in. The
        choice is a function of the case, so Hypothesis replays a case exactly."""
        digest = _digest(case)
        way, tweak = digest % 4, (digest >> 2) % 4
        if way == 0:
            return way
        method, path = case.operation.method.upper(), case.operation.path
        headers = {
            k: v for k, v in (case.headers or {}).items() if k.lower() not in CREDENTIAL_HEADERS
        }
        query = {k: v for k, v in (case.query or {}).items() if k not in CREDENTIAL_QUERY}
        cookies: dict[str, Any] = {}
        if way == 1:
            query["key"] = self.api_key
            headers["Authorization"] = f"Bearer {self.token}"
        elif way == 2:
            headers["X-API-Key"] = self.api_key
            headers["X-Access-Token"] = self.token
        elif (method, path) in OWNER_OR_MASTER:
            headers["X-API-Key"] = self.api_key
            query["masterKey"] = self.master_key
        else:
            query["key"] = self.api_key
            cookies["access_token"] = self.token
        if tweak:  # 0 keeps the generated ids, body and If-Match
            self._working_input(case, method, path, tweak, headers, query)
        case.headers = headers
        case.query = query
        case.cookies = cookies
        return way

    def _working_input(
        self,
        case: Case,
        method: str,
        path: str,
        tweak: int,
        headers: dict[str, Any],
        query: dict[str, Any],
    ) -> None:
        if path.startswith("/1/ce/"):
            case.path_parameters = {**(case.path_parameters or {}), "endpoint": "users"}
        if (method, path) in OWNER_OR_MASTER:
            query["uniqueId"] = self.unique_id
        if path == "/api/user/v1/login":
            query.pop("endpoint", None)
        if tweak == 1:
            headers.pop("If-Match", None)
        elif tweak == 2:
            headers["If-Match"] = "*"
        if not isinstance(case.body, dict) or tweak == 1:
            return
        body = dict(case.body)
        if (method, path) == ("PUT", "/1/ce/{endpoint}"):
            # The same password (unchanged), or a new one: a credential change.
            body.update(username=self.username, password=PASSWORD if tweak == 2 else NEW_PASSWORD)
        elif (method, path) == ("POST", "/1/ce/{endpoint}"):
            body["password"] = PASSWORD
        elif (method, path) == ("POST", "/1/ce/{endpoint}/login"):
            # The user's name with the generated password (failures, then 429), or the right one.
            body["username"] = self.username
            if tweak == 3:
                body["password"] = PASSWORD
        elif (method, path) == ("POST", "/api/user/v1/login"):
            body["eml"] = self.username
            if tweak == 3:
                body["pwd"] = PASSWORD
        case.body = body

    def after(self, case: Case, way: int, response: Response) -> None:
        """Follow what a case changed: a credential change revokes every session of the user
        (start a new one); a profile or record change may rename the user."""
        key = (case.operation.method.upper(), case.operation.path)
        if not way or response.status_code != 200 or key not in CHANGING:
            return
        r = httpx.get(f"{self.base_url}/me", headers={"X-Access-Token": self.token}, timeout=10)
        if r.status_code == 200:
            self.username = r.json()["data"]["username"]
        else:
            self.sign_up()


def _digest(case: Case) -> int:
    body = None if isinstance(case.body, NotSet) else case.body
    seen = (case.operation.label, case.path_parameters, case.query, case.headers, body)
    return zlib.crc32(repr(seen).encode("utf-8", "surrogatepass"))


def _wait_until_up(proc: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"amend serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"amend serve did not start:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp_path = tmp_path_factory.mktemp("fuzz")
    env = _env(tmp_path)
    created = subprocess.run(
        [sys.executable, "-m", "api", "project", "create", "fuzz", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    keys = json.loads(created.stdout)
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_until_up(proc, base_url, log)
        # The fuzzer reads the document built in-process (below): it must be the one served.
        served = httpx.get(f"{base_url}/openapi.json", timeout=10).json()
        assert served == openapi_document(max_body_bytes=MAX_BODY_BYTES)
        svc = Service(base_url, keys["api_key"], keys["master_key"])
        svc.sign_up()
        yield svc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


# The document the service serves (the `service` fixture checks that it is the same). Built here
# rather than loaded from the URL with `schemathesis.pytest.from_fixture`: that loader reads
# pytest's private `Node._nodeid`, which pytest 9.2 no longer has.
schema = schemathesis.openapi.from_dict(
    openapi_document(max_body_bytes=MAX_BODY_BYTES),
    config=SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            # Generation time depends on the machine's load (the suite runs with -n 2).
            "suppress-health-check": ["too_slow"],
        }
    ),
)


@schema.parametrize()
def test_every_response_conforms_to_the_document(case: Case, service: Service) -> None:
    way = service.present(case)
    response = case.call_and_validate(base_url=service.base_url, checks=CHECKS, timeout=10)
    service.after(case, way, response)


def _send(service: Service, method: str, path: str, **parts: Any) -> Response:
    case = schema[path][method].Case(media_type="application/json", **parts)
    return case.call_and_validate(base_url=service.base_url, checks=CHECKS, timeout=10)


BODY_OPERATIONS = [
    ("PUT", "/1/ce/{endpoint}"),
    ("POST", "/1/ce/{endpoint}"),
    ("POST", "/1/ce/{endpoint}/login"),
    ("PUT", "/api/user/v1/update"),
    ("POST", "/api/user/v1/update"),
    ("POST", "/api/user/v1/login"),
    ("PATCH", "/me"),
]


@pytest.mark.parametrize(("method", "path"), BODY_OPERATIONS)
def test_a_body_over_the_limit_gets_the_documented_413(
    service: Service, method: str, path: str
) -> None:
    response = _send(
        service,
        method,
        path,
        path_parameters={"endpoint": "users"} if "{endpoint}" in path else None,
        query={"key": service.api_key, "uniqueId": service.unique_id},
        headers={"X-Access-Token": service.token},
        body={"first_name": "x" * MAX_BODY_BYTES},
    )
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/1/ce/{endpoint}/login", {"username": "throttled", "password": "not-it-1"}),
        ("/api/user/v1/login", {"eml": "throttled@example.com", "pwd": "not-it-1"}),
    ],
)
def test_repeated_failed_sign_ins_get_the_documented_429(
    service: Service, path: str, body: dict[str, str]
) -> None:
    statuses = []
    for _ in range(10):
        response = _send(
            service,
            "POST",
            path,
            path_parameters={"endpoint": "users"} if "{endpoint}" in path else None,
            query={"key": service.api_key},
            body=body,
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[-1] == 429, statuses


@pytest.mark.parametrize("if_match", ['"\u00b2"', '"' + "1" * 5000 + '"', '"1"x', 'W/"1"'])
def test_an_if_match_that_names_no_version_gets_412(service: Service, if_match: str) -> None:
    # "²" passes str.isdigit but not int(); 5000 digits exceed int()'s limit: both were 500s.
    response = _send(
        service,
        "PATCH",
        "/me",
        headers={"X-Access-Token": service.token, "If-Match": if_match},
        body={"first_name": "Ada"},
    )
    assert response.status_code == 412


def test_head_reads_and_never_signs_up(service: Service) -> None:
    # Starlette routes HEAD with GET; the handlers used to dispatch it like PUT/POST.
    me = httpx.head(f"{service.base_url}/me", headers={"X-Access-Token": service.token})
    assert me.status_code == 200
    signup = httpx.request(
        "HEAD",
        f"{service.base_url}/1/ce/users",
        params={"key": service.api_key},
        json={"username": "head-request", "password": PASSWORD},
    )
    assert signup.status_code == 400  # read: no uniqueId


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


async def test_openapi_json_lists_exactly_the_rest_routes(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["openapi"] == "3.1.0"
    documented = {
        path: {method.upper() for method in item if method in METHODS}
        for path, item in doc["paths"].items()
    }
    # Starlette answers HEAD wherever it answers GET; HEAD is no operation of these APIs.
    routed = {route.path: set(route.methods or ()) - {"HEAD"} for route in ROUTES}
    assert documented == routed
    # Valid against the OpenAPI 3.1 meta-schema, and every reference resolves.
    schemathesis.openapi.from_dict(doc).validate()
    for ref in _refs(doc):
        prefix, kind, name = ref.rsplit("/", 2)
        assert prefix == "#/components" and name in doc["components"][kind], ref

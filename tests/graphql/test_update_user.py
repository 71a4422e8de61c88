"""`updateUser` and `record`: the strategy engine over real HTTP (SPEC §5, §6, §8).

The document of a user is `{"username": …, <custom fields>…}`; `password` is write-only.
Every failed write is followed by a read-back proving that nothing changed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import PASSWORD, ProjectKeys
from tests.db import TestDB, json_column
from tests.gql import (
    ME,
    RECORD,
    UPDATE_USER,
    Account,
    age_sessions,
    cookie_cleared,
    error_codes,
    gql,
    master,
    read_me,
    read_record,
    sign_in,
    sign_up,
    sql,
    top_error,
)

NEW_PASSWORD = "N3wSecret42x"
INITIAL_DATA = {"colour": "blue", "tags": ["a", "b"], "nested": {"x": 1, "y": 2}}
INITIAL_DOC = {"username": "jane", **INITIAL_DATA}
UNKNOWN_ID = "0" * 32


@pytest.fixture
async def jane(client: httpx.AsyncClient, project: ProjectKeys) -> Account:
    return await sign_up(client, project.api_key, "jane", data=INITIAL_DATA)


@pytest.fixture
async def bob(client: httpx.AsyncClient, project: ProjectKeys) -> Account:
    return await sign_up(client, project.api_key, "bob")


async def update_user(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    unique_id: str,
    data: Any,
    *,
    endpoint: str = "users",
    params: dict[str, str] | None = None,
    **arguments: Any,
) -> dict[str, Any]:
    variables = {"endpoint": endpoint, "uniqueId": unique_id, "data": data, **arguments}
    return await gql(client, UPDATE_USER, variables, headers=headers, params=params)


def payload_of(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    payload = body["data"]["updateUser"]
    assert isinstance(payload, dict)
    return payload


@dataclass(frozen=True)
class Snapshot:
    record: dict[str, Any]


async def snapshot(client: httpx.AsyncClient, project: ProjectKeys, account: Account) -> Snapshot:
    return Snapshot(await read_record(client, project.master_key, account.unique_id))


async def assert_unchanged(
    client: httpx.AsyncClient, project: ProjectKeys, account: Account, before: Snapshot
) -> None:
    """Nothing was written: same version, same document, same timestamps; the token still works
    and the password still signs in."""
    after = await read_record(client, project.master_key, account.unique_id)
    assert after == before.record
    me = await read_me(client, account.token)
    assert me["version"] == before.record["version"]
    signed_in = await sign_in(client, project.api_key, account.username, account.password)
    assert signed_in["data"]["signIn"]["errors"] == [], signed_in


# --------------------------------------------------------------------------------------------
# Successful strategies
# --------------------------------------------------------------------------------------------

SUCCESS_CASES = [
    pytest.param(
        "FORCE",
        {"username": "jane", "password": PASSWORD, "colour": "red"},
        {"username": "jane", "colour": "red"},
        id="test_force_replaces_the_whole_document",
    ),
    pytest.param(
        None,
        {"username": "jane", "password": PASSWORD, "plain": True},
        {"username": "jane", "plain": True},
        id="test_force_is_the_default_strategy",
    ),
    pytest.param(
        "FORCE",
        {"username": "janet", "password": PASSWORD, **INITIAL_DATA},
        {"username": "janet", **INITIAL_DATA},
        id="test_force_renames_the_user",
    ),
    pytest.param(
        "MERGE",
        {"size": 42},
        {**INITIAL_DOC, "size": 42},
        id="test_merge_adds_a_member",
    ),
    pytest.param(
        "MERGE",
        {"colour": None},
        {"username": "jane", "tags": ["a", "b"], "nested": {"x": 1, "y": 2}},
        id="test_merge_null_removes_member",
    ),
    pytest.param(
        "MERGE",
        {"absent": None},
        INITIAL_DOC,
        id="test_merge_null_for_an_absent_member_is_a_no_op",
    ),
    pytest.param(
        "MERGE",
        {"nested": {"y": None, "z": {"deep": True}}},
        {**INITIAL_DOC, "nested": {"x": 1, "z": {"deep": True}}},
        id="test_merge_objects_merge_recursively",
    ),
    pytest.param(
        "MERGE",
        {"tags": ["c"], "colour": {"r": 255}},
        {**INITIAL_DOC, "tags": ["c"], "colour": {"r": 255}},
        id="test_merge_arrays_and_scalars_replace",
    ),
    pytest.param(
        "MERGE",
        {"username": "JaneDoe"},
        {**INITIAL_DOC, "username": "JaneDoe"},
        id="test_merge_renames_the_user",
    ),
    pytest.param(
        "MERGE",
        {"email": "not-the-account@example.com"},
        {**INITIAL_DOC, "email": "not-the-account@example.com"},
        id="test_merge_custom_email_is_only_a_custom_field",
    ),
    pytest.param(
        "REPLACE",
        {"username": "jane", "password": PASSWORD, "k": [1, 2]},
        {"username": "jane", "k": [1, 2]},
        id="test_replace_with_an_object_replaces_entirely",
    ),
]


@pytest.mark.parametrize(("strategy", "data", "expected"), SUCCESS_CASES)
async def test_strategy_success(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    jane: Account,
    strategy: str | None,
    data: Any,
    expected: dict[str, Any],
) -> None:
    arguments: dict[str, Any] = {} if strategy is None else {"strategy": strategy}
    payload = payload_of(await update_user(client, jane.auth, jane.unique_id, data, **arguments))
    assert payload["errors"] == []
    record = payload["record"]
    assert record["uniqueId"] == jane.unique_id
    assert record["data"] == expected
    # +1 on every change; an update that changes nothing leaves the version alone.
    assert record["version"] == (1 if expected == INITIAL_DOC else 2)
    assert "password" not in record["data"]
    # Read back: the stored document is the returned one.
    stored = await read_record(client, project.master_key, jane.unique_id)
    assert stored == record
    me = await read_me(client, jane.token)  # no password change: the session is still valid
    assert me["username"] == expected["username"]
    assert me["data"] == {k: v for k, v in expected.items() if k != "username"}
    assert me["email"] is None  # data.email never touches the account email


async def test_merge_keeps_the_password(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    payload = payload_of(
        await update_user(client, jane.auth, jane.unique_id, {"colour": "red"}, strategy="MERGE")
    )
    assert payload["errors"] == []
    assert payload["record"]["data"] == {**INITIAL_DOC, "colour": "red"}
    # The password survived the merge and was not changed: same sessions, same password.
    await read_me(client, jane.token)
    signed_in = await sign_in(client, project.api_key, "jane", PASSWORD)
    assert signed_in["data"]["signIn"]["errors"] == []


async def test_password_is_never_returned_or_stored_in_data(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    doc = {"username": "jane", "password": NEW_PASSWORD, "password_hint": "none"}
    payload = payload_of(await update_user(client, jane.auth, jane.unique_id, doc))
    assert payload["errors"] == []
    assert payload["record"]["data"] == {"username": "jane", "password_hint": "none"}
    stored = await read_record(client, project.master_key, jane.unique_id)
    assert "password" not in stored["data"]
    assert NEW_PASSWORD not in str(stored)
    rows = sql(
        db,
        "SELECT CAST(data AS TEXT), password_hash FROM users WHERE unique_id = ?",
        (jane.unique_id,),
    )
    ((data_column, password_hash),) = rows
    assert NEW_PASSWORD not in data_column
    assert NEW_PASSWORD not in password_hash
    assert password_hash.startswith("$argon2")


async def test_concurrent_merges_lose_no_update(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    results = await asyncio.gather(
        *(
            update_user(client, jane.auth, jane.unique_id, {f"k{i}": i}, strategy="MERGE")
            for i in range(8)
        )
    )
    assert all(payload_of(body)["errors"] == [] for body in results)
    stored = await read_record(client, project.master_key, jane.unique_id)
    assert stored["version"] == 1 + 8
    assert stored["data"] == {**INITIAL_DOC, **{f"k{i}": i for i in range(8)}}


# --------------------------------------------------------------------------------------------
# Documents the engine refuses: payload errors, nothing written
# --------------------------------------------------------------------------------------------

USERNAME = ["data", "username"]
PASSWORD_FIELD = ["data", "password"]
DATA = ["data"]

FAILURE_CASES = [
    pytest.param(
        "FORCE",
        {"username": "jane", "colour": "red"},
        [("REQUIRED_FIELD_MISSING", PASSWORD_FIELD)],
        id="test_force_without_password_is_required_field_missing",
    ),
    pytest.param(
        "REPLACE",
        {"username": "jane", "colour": "red"},
        [("REQUIRED_FIELD_MISSING", PASSWORD_FIELD)],
        id="test_replace_without_password_is_required_field_missing",
    ),
    pytest.param(
        "FORCE",
        {"username": "jane", "password": ""},
        [("REQUIRED_FIELD_MISSING", PASSWORD_FIELD)],
        id="test_force_empty_password_is_required_field_missing",
    ),
    pytest.param(
        "MERGE",
        {"password": None},
        [("REQUIRED_FIELD_MISSING", PASSWORD_FIELD)],
        id="test_merge_null_password_is_required_field_missing",
    ),
    pytest.param(
        "MERGE",
        {"password": ""},
        [("REQUIRED_FIELD_MISSING", PASSWORD_FIELD)],
        id="test_merge_empty_password_is_required_field_missing",
    ),
    pytest.param(
        "FORCE",
        {"password": PASSWORD, "colour": "red"},
        [("REQUIRED_FIELD_MISSING", USERNAME)],
        id="test_force_without_username_is_required_field_missing",
    ),
    pytest.param(
        "FORCE",
        {"username": "", "password": PASSWORD},
        [("REQUIRED_FIELD_MISSING", USERNAME)],
        id="test_force_empty_username_is_required_field_missing",
    ),
    pytest.param(
        "FORCE",
        {"username": "   ", "password": PASSWORD},
        [("REQUIRED_FIELD_MISSING", USERNAME)],
        id="test_force_blank_username_is_required_field_missing",
    ),
    pytest.param(
        "MERGE",
        {"username": None},
        [("REQUIRED_FIELD_MISSING", USERNAME)],
        id="test_merge_null_username_is_required_field_missing",
    ),
    pytest.param(
        "MERGE",
        {"username": ""},
        [("REQUIRED_FIELD_MISSING", USERNAME)],
        id="test_merge_empty_username_is_required_field_missing",
    ),
    pytest.param(
        "FORCE",
        {},
        [("REQUIRED_FIELD_MISSING", USERNAME), ("REQUIRED_FIELD_MISSING", PASSWORD_FIELD)],
        id="test_force_empty_object_reports_both_missing_fields",
    ),
    pytest.param(
        "FORCE",
        {"username": 42, "password": PASSWORD},
        [("INVALID_FIELD", USERNAME)],
        id="test_username_number_is_invalid_field",
    ),
    pytest.param(
        "MERGE",
        {"username": ["jane"]},
        [("INVALID_FIELD", USERNAME)],
        id="test_username_array_is_invalid_field",
    ),
    pytest.param(
        "MERGE",
        {"username": {"first": "jane"}},
        [("INVALID_FIELD", USERNAME)],
        id="test_username_object_is_invalid_field",
    ),
    pytest.param(
        "FORCE",
        {"username": "jane", "password": 123456},
        [("INVALID_FIELD", PASSWORD_FIELD)],
        id="test_password_number_is_invalid_field",
    ),
    pytest.param(
        "FORCE",
        "just a string",
        [("NOT_AN_OBJECT", DATA)],
        id="test_force_string_is_not_an_object",
    ),
    pytest.param(
        "FORCE",
        [{"username": "jane", "password": PASSWORD}],
        [("NOT_AN_OBJECT", DATA)],
        id="test_force_array_is_not_an_object",
    ),
    pytest.param("FORCE", 42, [("NOT_AN_OBJECT", DATA)], id="test_force_number_is_not_an_object"),
    pytest.param(
        "REPLACE",
        "just a string",
        [("TYPE_MISMATCH", DATA)],
        id="test_replace_string_is_type_mismatch",
    ),
    pytest.param(
        "REPLACE",
        [{"username": "jane", "password": PASSWORD}],
        [("TYPE_MISMATCH", DATA)],
        id="test_replace_array_is_type_mismatch",
    ),
    pytest.param(
        "REPLACE", True, [("TYPE_MISMATCH", DATA)], id="test_replace_bool_is_type_mismatch"
    ),
    pytest.param(
        "MERGE",
        "just a string",
        [("NOT_AN_OBJECT", DATA)],
        id="test_merge_string_is_not_an_object",
    ),
    pytest.param(
        "MERGE",
        [{"colour": "red"}],
        [("NOT_AN_OBJECT", DATA)],
        id="test_merge_array_is_not_an_object",
    ),
    pytest.param(
        "FORCE",
        {"username": "jane", "password": "abc"},
        [("PASSWORD_POLICY", PASSWORD_FIELD)],
        id="test_short_new_password_is_password_policy",
    ),
    pytest.param(
        "MERGE",
        {"password": "onlyletters"},
        [("PASSWORD_POLICY", PASSWORD_FIELD)],
        id="test_new_password_without_digit_is_password_policy",
    ),
    pytest.param(
        "MERGE",
        {"password": "password1"},
        [("PASSWORD_POLICY", PASSWORD_FIELD)],
        id="test_common_new_password_is_password_policy",
    ),
    pytest.param(
        "FORCE",
        {"username": "jane99x", "password": "JANE99X"},
        [("PASSWORD_POLICY", PASSWORD_FIELD)],
        id="test_new_password_equal_to_new_username_is_password_policy",
    ),
    pytest.param(
        "MERGE",
        {"nested": {"x": {"y": {"z": [[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]}}}},
        [("INVALID_FIELD", None)],
        id="test_too_deep_custom_data_is_invalid_field",
    ),
]


@pytest.mark.parametrize(("strategy", "data", "expected"), FAILURE_CASES)
async def test_strategy_failure_writes_nothing(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    jane: Account,
    strategy: str,
    data: Any,
    expected: list[tuple[str, list[str] | None]],
) -> None:
    before = await snapshot(client, project, jane)
    payload = payload_of(
        await update_user(client, jane.auth, jane.unique_id, data, strategy=strategy)
    )
    assert payload["record"] is None
    got = error_codes(payload)
    if expected[0][1] is None:  # the path points inside the data; only its root is fixed
        assert [code for code, _ in got] == [code for code, _ in expected]
        assert all(path is not None and path[0] == "data" for _, path in got)
    else:
        assert got == expected
    assert all(e["message"] for e in payload["errors"])
    await assert_unchanged(client, project, jane, before)


@pytest.mark.parametrize("dry_run", [False, True], ids=["write", "dry_run"])
async def test_expected_version_mismatch_is_version_conflict(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, dry_run: bool
) -> None:
    before = await snapshot(client, project, jane)
    payload = payload_of(
        await update_user(
            client,
            jane.auth,
            jane.unique_id,
            {"colour": "red"},
            strategy="MERGE",
            expectedVersion=7,
            dryRun=dry_run,
        )
    )
    assert error_codes(payload) == [("VERSION_CONFLICT", ["expectedVersion"])]
    assert payload["record"] is None
    await assert_unchanged(client, project, jane, before)


async def test_expected_version_match_writes(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    first = payload_of(
        await update_user(
            client, jane.auth, jane.unique_id, {"a": 1}, strategy="MERGE", expectedVersion=1
        )
    )
    assert first["errors"] == []
    assert first["record"]["version"] == 2
    # The same expected version again is now stale.
    before = await snapshot(client, project, jane)
    stale = payload_of(
        await update_user(
            client, jane.auth, jane.unique_id, {"a": 2}, strategy="MERGE", expectedVersion=1
        )
    )
    assert error_codes(stale) == [("VERSION_CONFLICT", ["expectedVersion"])]
    await assert_unchanged(client, project, jane, before)


# --------------------------------------------------------------------------------------------
# dryRun
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "data", "expected"),
    [
        pytest.param(
            "MERGE",
            {"colour": None, "size": 1},
            {"username": "jane", "tags": ["a", "b"], "nested": {"x": 1, "y": 2}, "size": 1},
            id="test_dry_run_merge_returns_the_would_be_record",
        ),
        pytest.param(
            "FORCE",
            {"username": "janet", "password": PASSWORD},
            {"username": "janet"},
            id="test_dry_run_force_returns_the_would_be_record",
        ),
        pytest.param(
            "FORCE",
            {"username": "jane", "password": NEW_PASSWORD, "k": 1},
            {"username": "jane", "k": 1},
            id="test_dry_run_with_a_new_password_changes_nothing",
        ),
    ],
)
async def test_dry_run_writes_nothing(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    jane: Account,
    strategy: str,
    data: Any,
    expected: dict[str, Any],
) -> None:
    before = await snapshot(client, project, jane)
    response = await client.post(
        "/graphql",
        json={
            "query": UPDATE_USER,
            "variables": {
                "endpoint": "users",
                "uniqueId": jane.unique_id,
                "data": data,
                "strategy": strategy,
                "dryRun": True,
            },
        },
        headers=jane.auth,
    )
    payload = payload_of(response.json())
    assert payload["errors"] == []
    assert payload["record"]["uniqueId"] == jane.unique_id
    assert payload["record"]["data"] == expected
    assert not cookie_cleared(response)
    # Nothing written: same record, the session is alive, the old password still signs in.
    await assert_unchanged(client, project, jane, before)
    signed_in = await sign_in(client, project.api_key, "jane", NEW_PASSWORD)
    assert [e["code"] for e in signed_in["data"]["signIn"]["errors"]] == ["INVALID_CREDENTIALS"]


async def test_dry_run_reports_validation_errors(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    before = await snapshot(client, project, jane)
    payload = payload_of(
        await update_user(client, jane.auth, jane.unique_id, {"username": "jane"}, dryRun=True)
    )
    assert error_codes(payload) == [("REQUIRED_FIELD_MISSING", PASSWORD_FIELD)]
    await assert_unchanged(client, project, jane, before)


async def test_dry_run_reports_a_taken_username(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, bob: Account
) -> None:
    # "dryRun: validate and return": a rename that the real write would refuse is refused.
    before = await snapshot(client, project, jane)
    payload = payload_of(
        await update_user(
            client, jane.auth, jane.unique_id, {"username": "BOB"}, strategy="MERGE", dryRun=True
        )
    )
    assert error_codes(payload) == [("USERNAME_TAKEN", USERNAME)]
    await assert_unchanged(client, project, jane, before)


# --------------------------------------------------------------------------------------------
# Who may update what
# --------------------------------------------------------------------------------------------


async def test_owner_may_update_own_record(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    payload = payload_of(
        await update_user(client, jane.auth, jane.unique_id, {"a": 1}, strategy="MERGE")
    )
    assert payload["errors"] == []
    assert payload["record"]["data"]["a"] == 1
    rows = sql(db, "SELECT action, actor, strategy, fields FROM audit_events ORDER BY id")
    action, actor, strategy, fields = rows[-1]
    assert (action, actor, strategy, json_column(fields)) == ("update_user", "user", "merge", ["a"])


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("bob", id="test_other_users_record_is_forbidden_not_owner"),
        pytest.param("unknown", id="test_unknown_record_is_forbidden_not_owner_for_a_user"),
    ],
)
async def test_update_of_a_record_not_owned_is_forbidden(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, bob: Account, target: str
) -> None:
    before = await snapshot(client, project, bob)
    unique_id = bob.unique_id if target == "bob" else UNKNOWN_ID
    body = await update_user(
        client, jane.auth, unique_id, {"username": "bob", "password": NEW_PASSWORD}
    )
    assert top_error(body) == {"code": "FORBIDDEN", "reason": "NOT_OWNER"}
    assert body["data"] is None
    await assert_unchanged(client, project, bob, before)
    await read_me(client, jane.token)


@pytest.mark.parametrize("how", ["header", "query"])
async def test_master_key_updates_any_record(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB, how: str
) -> None:
    headers = master(project.master_key) if how == "header" else {}
    params = {"masterKey": project.master_key} if how == "query" else None
    body = await update_user(
        client, headers, jane.unique_id, {"vip": True}, strategy="MERGE", params=params
    )
    payload = payload_of(body)
    assert payload["errors"] == []
    assert payload["record"]["data"] == {**INITIAL_DOC, "vip": True}
    assert payload["record"]["version"] == 2
    rows = sql(db, "SELECT action, actor FROM audit_events ORDER BY id")
    assert rows[-1] == ("update_user", "master")
    await read_me(client, jane.token)  # no credential change: the user's session is intact


async def test_master_key_overrides_another_users_token(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, bob: Account
) -> None:
    headers = {**bob.auth, **master(project.master_key)}
    payload = payload_of(
        await update_user(client, headers, jane.unique_id, {"by": "master"}, strategy="MERGE")
    )
    assert payload["errors"] == []
    assert payload["record"]["data"]["by"] == "master"


async def test_master_key_unknown_record_is_record_not_found(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    payload = payload_of(
        await update_user(
            client,
            master(project.master_key),
            UNKNOWN_ID,
            {"username": "ghost", "password": PASSWORD},
        )
    )
    assert error_codes(payload) == [("RECORD_NOT_FOUND", ["uniqueId"])]
    assert payload["record"] is None


@pytest.mark.parametrize("endpoint", ["nope", "Not A Valid Name!"])
@pytest.mark.parametrize("who", ["owner", "master"])
async def test_unknown_endpoint_is_bad_request(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, endpoint: str, who: str
) -> None:
    before = await snapshot(client, project, jane)
    headers = jane.auth if who == "owner" else master(project.master_key)
    body = await update_user(
        client, headers, jane.unique_id, {"a": 1}, strategy="MERGE", endpoint=endpoint
    )
    assert top_error(body) == {"code": "BAD_REQUEST", "reason": "INVALID_ENDPOINT"}
    await assert_unchanged(client, project, jane, before)


async def test_record_in_another_endpoint_is_not_owned(
    client: httpx.AsyncClient, project: ProjectKeys, services: Any, jane: Account
) -> None:
    from api.services import projects

    await projects.create_endpoint(services, project=project.id, name="admins")
    body = await update_user(
        client, jane.auth, jane.unique_id, {"a": 1}, strategy="MERGE", endpoint="admins"
    )
    assert top_error(body) == {"code": "FORBIDDEN", "reason": "NOT_OWNER"}


async def test_without_token_or_master_key_is_unauthenticated(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    client.cookies.clear()
    before = await snapshot(client, project, jane)
    body = await update_user(client, {}, jane.unique_id, {"a": 1}, strategy="MERGE")
    assert top_error(body) == {"code": "UNAUTHENTICATED", "reason": "MISSING_TOKEN"}
    await assert_unchanged(client, project, jane, before)


# --------------------------------------------------------------------------------------------
# Passwords inside the document
# --------------------------------------------------------------------------------------------


async def test_same_password_and_same_document_changes_nothing(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    before = await snapshot(client, project, jane)
    response = await client.post(
        "/graphql",
        json={
            "query": UPDATE_USER,
            "variables": {
                "endpoint": "users",
                "uniqueId": jane.unique_id,
                "data": {**INITIAL_DOC, "password": PASSWORD},
            },
        },
        headers=jane.auth,
    )
    payload = payload_of(response.json())
    assert payload["errors"] == []
    assert payload["record"] == before.record  # no version bump: nothing changed
    assert not cookie_cleared(response)
    await assert_unchanged(client, project, jane, before)


async def test_same_password_with_another_change_keeps_sessions(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    second = (await sign_in(client, project.api_key, "jane"))["data"]["signIn"]["token"]
    response = await client.post(
        "/graphql",
        json={
            "query": UPDATE_USER,
            "variables": {
                "endpoint": "users",
                "uniqueId": jane.unique_id,
                "data": {"username": "jane", "password": PASSWORD, "colour": "green"},
            },
        },
        headers=jane.auth,
    )
    payload = payload_of(response.json())
    assert payload["errors"] == []
    assert payload["record"]["version"] == 2
    assert payload["record"]["data"] == {"username": "jane", "colour": "green"}
    assert not cookie_cleared(response)
    for token in (jane.token, second):
        await read_me(client, token)


async def test_same_password_needs_no_recent_signin(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    # SPEC §5: a password equal to the current one is "unchanged", so this is not a credential
    # change and needs no proof of presence, even from a session older than the reauth window.
    age_sessions(db)
    payload = payload_of(
        await update_user(
            client,
            jane.auth,
            jane.unique_id,
            {"username": "jane", "password": PASSWORD, "colour": "green"},
        )
    )
    assert payload["errors"] == []
    assert payload["record"]["data"] == {"username": "jane", "colour": "green"}
    await read_me(client, jane.token)


async def test_new_password_revokes_every_session(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    second = (await sign_in(client, project.api_key, "jane"))["data"]["signIn"]["token"]
    response = await client.post(
        "/graphql",
        json={
            "query": UPDATE_USER,
            "variables": {
                "endpoint": "users",
                "uniqueId": jane.unique_id,
                "data": {"password": NEW_PASSWORD},
                "strategy": "MERGE",
            },
        },
        headers=jane.auth,
    )
    payload = payload_of(response.json())
    assert payload["errors"] == []
    assert payload["record"]["data"] == INITIAL_DOC
    assert payload["record"]["version"] == 2
    assert cookie_cleared(response)
    for token in (jane.token, second):
        body = await gql(client, ME, headers={"Authorization": f"Bearer {token}"})
        assert top_error(body) == {"code": "UNAUTHENTICATED", "reason": "SESSION_REVOKED"}
    new = await sign_in(client, project.api_key, "jane", NEW_PASSWORD)
    assert new["data"]["signIn"]["errors"] == []
    old = await sign_in(client, project.api_key, "jane", PASSWORD)
    assert [e["code"] for e in old["data"]["signIn"]["errors"]] == ["INVALID_CREDENTIALS"]
    stored = sql(db, "SELECT password_hash FROM users WHERE unique_id = ?", (jane.unique_id,))
    assert stored[0][0].startswith("$argon2")
    rows = sql(db, "SELECT action, actor, fields FROM audit_events ORDER BY id")
    action, actor, fields = rows[-1]
    assert (action, actor, json_column(fields)) == ("update_user", "user", ["password"])


async def test_new_password_from_an_aged_session_requires_reauthentication(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    age_sessions(db)
    before = await snapshot(client, project, jane)
    payload = payload_of(
        await update_user(
            client,
            jane.auth,
            jane.unique_id,
            {"password": NEW_PASSWORD, "colour": "red"},
            strategy="MERGE",
        )
    )
    assert [e["code"] for e in payload["errors"]] == ["REAUTHENTICATION_REQUIRED"]
    # updateUser has no currentPassword argument; the path names the password of the document.
    assert payload["errors"][0]["field"] == PASSWORD_FIELD
    assert payload["record"] is None
    await assert_unchanged(client, project, jane, before)


@pytest.mark.parametrize("settings_env", [{"AMEND_REAUTH_WINDOW_SECONDS": "0"}])
async def test_new_password_outside_a_zero_reauth_window_requires_reauthentication(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    await asyncio.sleep(0.01)
    before = await snapshot(client, project, jane)
    payload = payload_of(
        await update_user(
            client, jane.auth, jane.unique_id, {"username": "jane", "password": NEW_PASSWORD}
        )
    )
    assert [e["code"] for e in payload["errors"]] == ["REAUTHENTICATION_REQUIRED"]
    await assert_unchanged(client, project, jane, before)


async def test_master_key_sets_a_new_password_without_reauthentication(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    age_sessions(db)
    payload = payload_of(
        await update_user(
            client,
            master(project.master_key),
            jane.unique_id,
            {"password": NEW_PASSWORD},
            strategy="MERGE",
        )
    )
    assert payload["errors"] == []
    body = await gql(client, ME, headers=jane.auth)
    assert top_error(body) == {"code": "UNAUTHENTICATED", "reason": "SESSION_REVOKED"}
    new = await sign_in(client, project.api_key, "jane", NEW_PASSWORD)
    assert new["data"]["signIn"]["errors"] == []
    rows = sql(db, "SELECT action, actor, fields FROM audit_events ORDER BY id")
    action, actor, fields = rows[-1]
    assert (action, actor, json_column(fields)) == ("update_user", "master", ["password"])


async def test_master_key_new_password_is_policy_checked(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    before = await snapshot(client, project, jane)
    payload = payload_of(
        await update_user(
            client,
            master(project.master_key),
            jane.unique_id,
            {"password": "123456"},
            strategy="MERGE",
        )
    )
    assert error_codes(payload) == [("PASSWORD_POLICY", PASSWORD_FIELD)]
    await assert_unchanged(client, project, jane, before)


@pytest.mark.parametrize("settings_env", [{"AMEND_CREDENTIAL_CHANGES_PER_WINDOW": "1"}])
async def test_password_changes_by_the_user_are_throttled(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    first = payload_of(
        await update_user(
            client, jane.auth, jane.unique_id, {"password": NEW_PASSWORD}, strategy="MERGE"
        )
    )
    assert first["errors"] == []
    signed_in = await sign_in(client, project.api_key, "jane", NEW_PASSWORD)
    token = signed_in["data"]["signIn"]["token"]
    again = Account("jane", NEW_PASSWORD, token, jane.unique_id, "")
    before = await snapshot(client, project, again)
    body = await update_user(
        client, again.auth, jane.unique_id, {"password": "Th1rdSecret"}, strategy="MERGE"
    )
    assert top_error(body) == {"code": "RATE_LIMITED", "reason": "RATE_LIMITED"}
    await assert_unchanged(client, project, again, before)


# --------------------------------------------------------------------------------------------
# Usernames
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "data"),
    [
        pytest.param("MERGE", {"username": "bob"}, id="test_merge_to_a_taken_username"),
        pytest.param("MERGE", {"username": "BOB"}, id="test_taken_username_is_case_insensitive"),
        pytest.param("MERGE", {"username": " Bob "}, id="test_taken_username_ignores_whitespace"),
        pytest.param(
            "FORCE",
            {"username": "Bob", "password": PASSWORD},
            id="test_force_to_a_taken_username",
        ),
    ],
)
async def test_taken_username_is_username_taken(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    jane: Account,
    bob: Account,
    strategy: str,
    data: dict[str, Any],
) -> None:
    before = await snapshot(client, project, jane)
    payload = payload_of(
        await update_user(client, jane.auth, jane.unique_id, data, strategy=strategy)
    )
    assert error_codes(payload) == [("USERNAME_TAKEN", USERNAME)]
    await assert_unchanged(client, project, jane, before)


async def test_changing_only_the_case_of_ones_own_username_is_allowed(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    payload = payload_of(
        await update_user(client, jane.auth, jane.unique_id, {"username": "JANE"}, strategy="MERGE")
    )
    assert payload["errors"] == []
    assert payload["record"]["data"]["username"] == "JANE"
    signed_in = await sign_in(client, project.api_key, "jane")
    assert signed_in["data"]["signIn"]["errors"] == []


# --------------------------------------------------------------------------------------------
# The `record` query
# --------------------------------------------------------------------------------------------


async def test_record_owner_reads_own_document(client: httpx.AsyncClient, jane: Account) -> None:
    body = await gql(
        client, RECORD, {"endpoint": "users", "uniqueId": jane.unique_id}, headers=jane.auth
    )
    assert "errors" not in body
    record = body["data"]["record"]
    assert record["uniqueId"] == jane.unique_id
    assert record["data"] == INITIAL_DOC
    assert record["version"] == 1
    assert record["createdAt"].endswith("Z")


@pytest.mark.parametrize("how", ["header", "query"])
async def test_record_master_key_reads_any_document(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, how: str
) -> None:
    headers = master(project.master_key) if how == "header" else {}
    params = {"masterKey": project.master_key} if how == "query" else None
    body = await gql(
        client,
        RECORD,
        {"endpoint": "users", "uniqueId": jane.unique_id},
        headers=headers,
        params=params,
    )
    assert "errors" not in body
    assert body["data"]["record"]["data"] == INITIAL_DOC


@pytest.mark.parametrize("target", ["bob", "unknown"])
async def test_record_of_another_user_is_forbidden(
    client: httpx.AsyncClient, jane: Account, bob: Account, target: str
) -> None:
    unique_id = bob.unique_id if target == "bob" else UNKNOWN_ID
    body = await gql(
        client, RECORD, {"endpoint": "users", "uniqueId": unique_id}, headers=jane.auth
    )
    assert top_error(body) == {"code": "FORBIDDEN", "reason": "NOT_OWNER"}
    assert body["data"] is None


async def test_record_unknown_with_master_key_is_record_not_found(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    body = await gql(
        client,
        RECORD,
        {"endpoint": "users", "uniqueId": UNKNOWN_ID},
        headers=master(project.master_key),
    )
    assert top_error(body) == {"code": "BAD_REQUEST", "reason": "RECORD_NOT_FOUND"}


async def test_record_unknown_endpoint_is_invalid_endpoint(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    body = await gql(
        client,
        RECORD,
        {"endpoint": "nope", "uniqueId": jane.unique_id},
        headers=master(project.master_key),
    )
    assert top_error(body) == {"code": "BAD_REQUEST", "reason": "INVALID_ENDPOINT"}


async def test_record_without_credentials_is_unauthenticated(
    client: httpx.AsyncClient, jane: Account
) -> None:
    client.cookies.clear()
    body = await gql(client, RECORD, {"endpoint": "users", "uniqueId": jane.unique_id})
    assert top_error(body) == {"code": "UNAUTHENTICATED", "reason": "MISSING_TOKEN"}

"""Input validation policies: password, email, username, profile fields, custom data."""

from __future__ import annotations

import pytest

from api.core import policy
from api.core.errors import AmendError, Reason
from api.core.policy import (
    CUSTOM_DATA_MAX_BYTES,
    CUSTOM_DATA_MAX_DEPTH,
    CUSTOM_DATA_MAX_KEY_LENGTH,
    canonical_email,
    canonical_username,
    common_passwords,
    has_control_chars,
    normalize_email,
    validate_custom_data,
    validate_endpoint_name,
    validate_image_url,
    validate_name,
    validate_password,
    validate_phone,
    validate_username,
)

F = ("input", "password")

# --- password -----------------------------------------------------------------------------


USER = "jane2024"
EMAIL = "jdoe99@example.com"


@pytest.mark.parametrize(
    ("password", "username", "email", "needle"),
    [
        ("ab1", USER, EMAIL, "too short"),
        ("a1b2c", USER, EMAIL, "too short"),
        ("a1" * 15 + "x", USER, EMAIL, "too long"),
        ("abcdefgh", USER, EMAIL, "digit"),
        ("12345678", USER, EMAIL, "letter"),
        ("!!!!!!!!", USER, EMAIL, "letter"),
        ("password1", USER, EMAIL, "common"),
        ("PassWord1", USER, EMAIL, "common"),
        ("abc123", USER, EMAIL, "common"),
        ("Jane2024", USER, EMAIL, "username"),
        ("JANE2024", USER, EMAIL, "username"),
        ("jd9@example.com", "someone", "jd9@example.com", "the email address"),
        ("JD9@Example.COM", "someone", "jd9@example.com", "the email address"),
        ("jdoe99", USER, EMAIL, "name part of the email"),
        ("abc\x00def123", USER, EMAIL, "control"),
        ("abc\ndef123", USER, EMAIL, "control"),
    ],
)
def test_password_policy_refuses_with_a_message_naming_the_rule(
    password: str, username: str, email: str, needle: str
) -> None:
    with pytest.raises(AmendError) as info:
        validate_password(password, username=username, email=email, field=F)
    assert info.value.reason is Reason.PASSWORD_POLICY
    assert info.value.field == F
    assert needle in info.value.message


@pytest.mark.parametrize(
    "password",
    ["Zght943!", "tr0ub4dor&3", "a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5", "ünïcødé9", "x9y8z7"],
)
def test_password_policy_accepts_good_passwords(password: str) -> None:
    validate_password(password, username="jane", email="jane@example.com", field=F)


def test_password_policy_works_without_username_or_email() -> None:
    validate_password("Zght943!", username=None, email=None, field=F)


def test_password_equal_to_username_is_refused_case_insensitively() -> None:
    with pytest.raises(AmendError) as info:
        validate_password("Qzx98765", username="qzX98765", email=None, field=F)
    assert "username" in info.value.message


def test_password_at_the_length_bounds_is_accepted() -> None:
    validate_password("qz9" + "x" * 3, username=None, email=None, field=F)
    validate_password("qz9" + "x" * 27, username=None, email=None, field=F)


def test_deny_list_is_shipped_lowercase_and_only_holds_rule_passing_entries() -> None:
    denied = common_passwords()
    assert len(denied) > 5000
    assert "password1" in denied
    assert "qwerty123" in denied
    assert all(p == p.lower() for p in denied)
    assert all(6 <= len(p) <= 30 for p in denied)
    assert common_passwords() is denied  # cached


# --- email --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "normalized"),
    [
        ("jane@example.com", "jane@example.com"),
        ("Jane.Doe@EXAMPLE.COM", "Jane.Doe@example.com"),
        ("  jane@example.com\n", "jane@example.com"),
        ("jane@xn--bcher-kva.example", "jane@bücher.example"),
    ],
)
def test_normalize_email_returns_the_normalized_form(email: str, normalized: str) -> None:
    assert normalize_email(email, field=("email",)) == normalized


@pytest.mark.parametrize(
    "email",
    [
        "",
        "   ",
        "not-an-email",
        "jane@",
        "@example.com",
        "jane@@example.com",
        "jane doe@example.com",
        "jane@example",
        "jane\x00@example.com",
        "a" * 250 + "@example.com",
    ],
)
def test_normalize_email_refuses_invalid_addresses(email: str) -> None:
    with pytest.raises(AmendError) as info:
        normalize_email(email, field=("input", "email"))
    assert info.value.reason is Reason.INVALID_EMAIL
    assert info.value.field == ("input", "email")


def test_canonical_email_is_case_insensitive() -> None:
    assert canonical_email("Jane.Doe@EXAMPLE.com") == canonical_email("jane.doe@example.COM")
    assert canonical_email("Jane.Doe@EXAMPLE.com") == "jane.doe@example.com"


def test_canonical_email_never_raises_on_a_non_address() -> None:
    assert canonical_email(" Jane ") == "jane"


# --- username -----------------------------------------------------------------------------


def test_canonical_username_folds_case_and_compatibility_forms() -> None:
    assert canonical_username("Jane") == canonical_username("jANE")
    assert canonical_username("Straße") == canonical_username("STRASSE")
    assert canonical_username("\uff4a\uff41\uff4e\uff45") == "jane"  # fullwidth, NFKC
    assert canonical_username("\ufb01sh") == "fish"  # ligature


def test_validate_username_returns_the_trimmed_name() -> None:
    assert validate_username("  jane ", field=("username",)) == "jane"


@pytest.mark.parametrize(
    ("username", "reason"),
    [
        (None, Reason.REQUIRED_FIELD_MISSING),
        ("", Reason.REQUIRED_FIELD_MISSING),
        ("   ", Reason.REQUIRED_FIELD_MISSING),
        (42, Reason.INVALID_FIELD),
        ("x" * 151, Reason.INVALID_FIELD),
        ("ja\x00ne", Reason.INVALID_FIELD),
        ("ja\nne", Reason.INVALID_FIELD),
        ("ja\x9bne", Reason.INVALID_FIELD),
        ("ja\u200bne", Reason.INVALID_FIELD),  # zero-width space
        ("ja\u200dne", Reason.INVALID_FIELD),  # zero-width joiner
        ("\u202eenaj", Reason.INVALID_FIELD),  # right-to-left override
        ("\ufeffjane", Reason.INVALID_FIELD),  # byte order mark
        ("ja\u00adne", Reason.INVALID_FIELD),  # soft hyphen
        ("ja\u2028ne", Reason.INVALID_FIELD),  # line separator
    ],
)
def test_validate_username_refuses(username: object, reason: Reason) -> None:
    with pytest.raises(AmendError) as info:
        validate_username(username, field=("data", "username"))
    assert info.value.reason is reason
    assert info.value.field == ("data", "username")


@pytest.mark.parametrize("username", ["Zoë", "日本語", "José María", "ada.lovelace+1", "Ἀθηνᾶ"])
def test_validate_username_accepts_names_in_any_script(username: str) -> None:
    assert validate_username(username, field=("username",)) == username


def test_validate_username_accepts_150_characters() -> None:
    assert validate_username("x" * 150, field=("username",)) == "x" * 150


# --- phone, image url, names, endpoint ----------------------------------------------------


@pytest.mark.parametrize("phone", ["+14155552671", "+442071838750", "+12", "+123456789012345"])
def test_validate_phone_accepts_e164(phone: str) -> None:
    assert validate_phone(phone, field=("phoneNumber",)) == phone


@pytest.mark.parametrize(
    "phone",
    [
        "14155552671",
        "+04155552671",
        "+1",
        "+1234567890123456",
        "+1 415 555 2671",
        "+1415555267a",
        "+14155552671\n",
        "+١٤١٥٥٥٥٢٦٧١",  # Arabic-Indic digits are not E.164
        "",
    ],
)
def test_validate_phone_refuses_non_e164(phone: str) -> None:
    with pytest.raises(AmendError) as info:
        validate_phone(phone, field=("phone_number",))
    assert info.value.reason is Reason.INVALID_FIELD
    assert info.value.field == ("phone_number",)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/a.png",
        "http://cdn.example.com:8080/p/q.jpg?s=64#x",
        "HTTPS://EXAMPLE.COM/A.PNG",
        "https://[2001:db8::1]/a.png",
    ],
)
def test_validate_image_url_accepts_http_urls(url: str) -> None:
    assert validate_image_url(url, field=("imageUrl",)) == url


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript://example.com/%0aalert(1)",
        "data:image/png;base64,AAAA",
        "ftp://example.com/a.png",
        "//example.com/a.png",
        "/a.png",
        "https://",
        "https:///a.png",
        "https://example.com/a b.png",
        "https://example.com/\x00.png",
        "https://example.com:99999/a.png",
        "https://example.com/" + "a" * 2048,
        "",
    ],
)
def test_validate_image_url_refuses_other_urls(url: str) -> None:
    with pytest.raises(AmendError) as info:
        validate_image_url(url, field=("image_url",))
    assert info.value.reason is Reason.INVALID_FIELD
    assert info.value.field == ("image_url",)


def test_validate_name_accepts_ordinary_names() -> None:
    assert validate_name("Zoë O'Brien-Smith", field=("firstName",)) == "Zoë O'Brien-Smith"
    assert validate_name("x" * 100, field=("firstName",)) == "x" * 100


@pytest.mark.parametrize("name", ["x" * 101, "Ja\tne", "Ja\x00ne", 5])
def test_validate_name_refuses_long_or_control_characters(name: str) -> None:
    with pytest.raises(AmendError) as info:
        validate_name(name, field=("lastName",))
    assert info.value.reason is Reason.INVALID_FIELD
    assert info.value.field == ("lastName",)


@pytest.mark.parametrize("name", ["users", "a", "0", "admins_2", "my-pool", "a" * 63])
def test_validate_endpoint_name_accepts_valid_names(name: str) -> None:
    assert validate_endpoint_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "Users", "_users", "-x", "a" * 64, "a.b", "a/b", "users\n", "ü", "a b"]
)
def test_validate_endpoint_name_refuses_invalid_names(name: str) -> None:
    with pytest.raises(AmendError) as info:
        validate_endpoint_name(name)
    assert info.value.reason is Reason.INVALID_ENDPOINT


def test_has_control_chars() -> None:
    assert not has_control_chars("Zoë\u00a0O'Brien")
    for bad in ("\x00", "\x1f", "\x7f", "\x85", "\ud800"):
        assert has_control_chars(f"a{bad}b")


# --- custom data --------------------------------------------------------------------------


def _nested(depth: int) -> dict[str, object]:
    data: dict[str, object] = {}
    node = data
    for _ in range(depth - 1):
        child: dict[str, object] = {}
        node["k"] = child
        node = child
    return data


def test_custom_data_accepts_json_objects() -> None:
    data = {"a": [1, 2.5, True, None, "x\ny"], "b": {"c": {}}, "e": "ünïcødé"}
    assert validate_custom_data(data, field=("data",)) is data


def test_custom_data_accepts_the_maximum_depth() -> None:
    validate_custom_data(_nested(CUSTOM_DATA_MAX_DEPTH), field=("data",))
    validate_custom_data({"a": [[[1]]]}, field=("data",))


@pytest.mark.parametrize("value", [[1], "text", 3, None, True])
def test_custom_data_must_be_an_object(value: object) -> None:
    with pytest.raises(AmendError) as info:
        validate_custom_data(value, field=("input", "data"))
    assert info.value.reason is Reason.NOT_AN_OBJECT
    assert info.value.field == ("input", "data")


@pytest.mark.parametrize(
    ("data", "needle", "field"),
    [
        (_nested(CUSTOM_DATA_MAX_DEPTH + 1), "deeply", ("data", *["k"] * CUSTOM_DATA_MAX_DEPTH)),
        (_nested(5000), "deeply", ("data", *["k"] * CUSTOM_DATA_MAX_DEPTH)),
        ({"a": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}, "deeply", None),
        ({"big": "x" * CUSTOM_DATA_MAX_BYTES}, "too large", ("data",)),
        ({"n": float("nan")}, "finite", ("data", "n")),
        ({"n": [float("inf")]}, "finite", ("data", "n", "0")),
        ({"n": float("-inf")}, "finite", ("data", "n")),
        ({"s": "a\x00b"}, "NUL", ("data", "s")),
        ({"a\x00": 1}, "NUL", ("data",)),
        ({"s": "\ud800"}, "surrogate", ("data", "s")),
        ({"k" * (CUSTOM_DATA_MAX_KEY_LENGTH + 1): 1}, "too long", ("data",)),
        ({1: "x"}, "strings", ("data",)),
        ({"o": object()}, "non-JSON", ("data", "o")),
        ({"b": b"bytes"}, "non-JSON", ("data", "b")),
        ({"n": 10**5000}, "64 bits", ("data", "n")),
        ({"n": 2**64}, "64 bits", ("data", "n")),
        ({"n": [-(2**63) - 1]}, "64 bits", ("data", "n", "0")),
    ],
)
def test_custom_data_limits(data: dict[str, object], needle: str, field: object) -> None:
    with pytest.raises(AmendError) as info:
        validate_custom_data(data, field=("data",))
    assert info.value.reason is Reason.INVALID_FIELD
    assert needle in info.value.message
    if field is not None:
        assert info.value.field == field


def test_custom_data_size_counts_utf8_bytes() -> None:
    # 3 bytes per character: fits in characters, not in bytes.
    data = {"s": "€" * (CUSTOM_DATA_MAX_BYTES // 3)}
    with pytest.raises(AmendError):
        validate_custom_data(data, field=("data",))
    validate_custom_data({"s": "€" * (CUSTOM_DATA_MAX_BYTES // 3 - 10)}, field=("data",))


def test_custom_data_accepts_a_key_at_the_length_limit() -> None:
    validate_custom_data({"k" * CUSTOM_DATA_MAX_KEY_LENGTH: 1}, field=("data",))


def test_limits_are_module_constants() -> None:
    assert (
        policy.CUSTOM_DATA_MAX_BYTES,
        policy.CUSTOM_DATA_MAX_DEPTH,
        policy.CUSTOM_DATA_MAX_KEY_LENGTH,
    ) == (65536, 16, 256)

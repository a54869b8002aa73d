"""PII controls: pseudonymize (format, keys, Secrets Manager), FS208, and PII flags in plans."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fsgen.loader import check, load
from fsgen.runtime import pii as core

KEY = "k" * 32


@pytest.fixture(autouse=True)
def _no_ambient_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(core.KEY_ENV, raising=False)
    monkeypatch.delenv(core.SECRET_ENV, raising=False)
    core.clear_key_cache()
    yield
    core.clear_key_cache()


def _hmac_oracle(key: bytes, message: bytes) -> str:
    """HMAC-SHA256 written out from RFC 2104, independent of the hmac module."""
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + message).digest()
    return hashlib.sha256(bytes(b ^ 0x5C for b in key) + inner).hexdigest()


def test_rfc4231_vector_and_documented_format() -> None:
    # RFC 4231 test case 1 (key 0x0b * 20, data "Hi There")
    token = core.pseudonymize(b"Hi There", key=b"\x0b" * 20)
    assert token == ("ps1:b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")


@settings(max_examples=60, deadline=None)
@given(value=st.text(), key=st.binary(min_size=16, max_size=100))
def test_matches_independent_hmac(value: str, key: bytes) -> None:
    token = core.pseudonymize(value, key=key)
    assert token == "ps1:" + _hmac_oracle(key, value.encode("utf-8"))
    assert token is not None and len(token) == 4 + 64


@settings(max_examples=60, deadline=None)
@given(a=st.text(), b=st.text())
def test_deterministic_and_distinct(a: str, b: str) -> None:
    assert core.pseudonymize(a, key=KEY) == core.pseudonymize(a, key=KEY)
    if a != b:
        assert core.pseudonymize(a, key=KEY) != core.pseudonymize(b, key=KEY)


def test_int_and_its_text_give_one_token_and_none_stays_none() -> None:
    assert core.pseudonymize(42, key=KEY) == core.pseudonymize("42", key=KEY)
    assert core.pseudonymize(None, key=KEY) is None


@pytest.mark.parametrize("bad", [1.5, True, ["x"], {"a": 1}])
def test_non_identifier_values_are_refused(bad: object) -> None:
    with pytest.raises(TypeError, match="str, int or bytes identifier"):
        core.pseudonymize(bad, key=KEY)  # type: ignore[arg-type]


def test_different_keys_give_different_tokens() -> None:
    assert core.pseudonymize("c1", key=KEY) != core.pseudonymize("c1", key="j" * 32)


def test_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(core.KEY_ENV, KEY)
    assert core.pseudonymize("c1") == core.pseudonymize("c1", key=KEY)


def test_missing_key_names_both_settings() -> None:
    with pytest.raises(core.PseudonymizationKeyError) as info:
        core.pseudonymize("c1")
    assert core.KEY_ENV in str(info.value) and core.SECRET_ENV in str(info.value)


def test_short_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(core.KEY_ENV, "short")
    with pytest.raises(core.PseudonymizationKeyError, match="5 bytes; at least 16"):
        core.pseudonymize("c1")
    with pytest.raises(core.PseudonymizationKeyError, match="key= argument"):
        core.pseudonymize("c1", key=b"123")


def _secret(aws_env: str, name: str, **value: object) -> str:
    import boto3

    client = boto3.client("secretsmanager", region_name="us-east-1")
    return str(client.create_secret(Name=name, **value)["ARN"])


def test_key_from_secrets_manager_string(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    arn = _secret(aws_env, "fsgen/pseudo-string", SecretString="s" * 40)
    monkeypatch.setenv(core.SECRET_ENV, arn)
    assert core.pseudonymize("c1") == core.pseudonymize("c1", key="s" * 40)


def test_key_from_secrets_manager_binary_is_cached(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    _secret(aws_env, "fsgen/pseudo-binary", SecretBinary=b"\x01" * 32)
    monkeypatch.setenv(core.SECRET_ENV, "fsgen/pseudo-binary")
    first = core.pseudonymize("c1")
    assert first == core.pseudonymize("c1", key=b"\x01" * 32)
    # rotate the secret: the cached key stays until the cache is cleared
    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
        SecretId="fsgen/pseudo-binary", SecretBinary=b"\x02" * 32
    )
    assert core.pseudonymize("c1") == first
    core.clear_key_cache()
    assert core.pseudonymize("c1") == core.pseudonymize("c1", key=b"\x02" * 32)


def test_missing_secret_is_a_clear_error(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(core.SECRET_ENV, "fsgen/does-not-exist")
    with pytest.raises(
        core.PseudonymizationKeyError,
        match="cannot read pseudonymization key secret 'fsgen/does-not-exist'",
    ):
        core.pseudonymize("c1")


def test_runtime_module_is_stdlib_only() -> None:
    code = (
        "import sys, fsgen.runtime.pii as p; "
        "heavy = {'pydantic', 'boto3', 'pandas', 'duckdb', 'pyarrow'} & set(sys.modules); "
        "assert not heavy, heavy; from fsgen import pseudonymize; "
        "assert pseudonymize is p.pseudonymize"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


PSEUDO_DEFS = """\
from fsgen import Entity, FeatureGroup, String, pseudonymize

customer = Entity("customer_id", String, description="c")
g = FeatureGroup("grp", entity=customer, event_time="ts", owner="o", description="d")


@g.feature(String, description="Pseudonymous household id", pii="pseudonymous")
def household_token(household_id: str) -> str:
    return pseudonymize(household_id)
"""


def test_usable_inside_a_feature_function(
    make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fsgen.bind import group_runtime

    monkeypatch.setenv(core.KEY_ENV, KEY)
    spec = load(make_project({"featuredefs/defs.py": PSEUDO_DEFS}))
    rt = group_runtime(spec.group("grp"))
    record = rt.process({"customer_id": "c1", "ts": "2024-01-01T00:00:00Z", "household_id": "h-9"})
    assert record["household_token"] == core.pseudonymize("h-9", key=KEY)


# ------------------------------------------------------------------ FS208 (sensitive online)

SENSITIVE = """\
from fsgen import Entity, FeatureGroup, Integral, String

customer = Entity("customer_id", String, description="c")
g = FeatureGroup("grp", entity=customer, event_time="ts", owner="o", description="d"{extra})


@g.feature(Integral, description="Health flag", pii="{pii}")
def flag(x: int) -> int:
    return x
"""


@pytest.mark.parametrize(
    ("extra", "pii", "expected"),
    [
        ("", "sensitive", True),
        (", allow_sensitive_online=True", "sensitive", False),
        (", online=False", "sensitive", False),
        ("", "personal", False),
    ],
)
def test_fs208_sensitive_feature_in_online_store(
    make_project: Callable[..., Path], extra: str, pii: str, expected: bool
) -> None:
    root = make_project({"featuredefs/defs.py": SENSITIVE.format(extra=extra, pii=pii)})
    found = [d for d in check(root).diagnostics if d.code == "FS208"]
    assert bool(found) is expected
    if expected:
        assert found[0].path == "featuredefs/defs.py" and found[0].line == 7
        assert "allow_sensitive_online=True" in (found[0].hint or "")


def test_unknown_pii_class_is_fs112(make_project: Callable[..., Path]) -> None:
    root = make_project({"featuredefs/defs.py": SENSITIVE.format(extra="", pii="secret")})
    codes = [d.code for d in check(root).diagnostics]
    assert "FS112" in codes


def test_plan_text_flags_new_personal_data(make_project: Callable[..., Path]) -> None:
    from fsgen.backends import open_backend
    from fsgen.config import load_config
    from fsgen.plan.apply import compute_plan
    from fsgen.plan.render import render_plan

    root = make_project(
        {
            "featuredefs/defs.py": SENSITIVE.format(
                extra=", allow_sensitive_online=True", pii="sensitive"
            )
        }
    )
    config = load_config(root)
    plan = compute_plan(config, load(root), open_backend(config, "local"), artifacts=False)
    text = render_plan(plan)
    block = (
        "\nPII review: personal data is added or reclassified:\n"
        "  ! grp.flag: new feature -> sensitive, served online\n\nPlan: 1 to add"
    )
    assert block in text
    assert "PII review" not in render_plan(plan.model_copy(update={"changes": ()}))

"""URL policy on resolved addresses, and redaction (no network: literal addresses and localhost only)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tornado_engine.errors import InvalidRequest
from tornado_engine.safety import (
    BlockedAddress,
    NetworkPolicy,
    check_url_syntax,
    is_media_extension,
    redact,
    remote_text,
    strip_credentials,
)

STRICT = NetworkPolicy()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost:8080/x",
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://0177.0.0.1/",  # octal
        "http://127.1/",  # short form
        "http://0x7f.0.0.1/",
        "http://10.0.0.5/",
        "http://172.16.3.4/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://100.64.0.1/",  # CGNAT
        "http://[::1]/",
        "http://[fd00::1]/",  # unique-local
        "http://[fe80::1]/",  # link-local
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped IPv6
        "http://[::ffff:7f00:1]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",  # multicast
    ],
)
def test_non_public_addresses_refused(url: str) -> None:
    with pytest.raises(BlockedAddress, match="Blocked by network policy"):
        STRICT.check_url(url)


def test_public_literal_allowed() -> None:
    assert STRICT.check_url("https://93.184.216.34/v.mp4") == [ipaddress.ip_address("93.184.216.34")]


def test_named_networks_can_be_allowed() -> None:
    policy = NetworkPolicy.build(["127.0.0.0/8", "::1/128"])
    assert policy.check_url("http://127.1:9/x") == [ipaddress.ip_address("127.0.0.1")]
    assert policy.check_url("http://[::ffff:127.0.0.1]/")
    with pytest.raises(BlockedAddress):
        policy.check_url("http://10.1.2.3/")


def test_allow_list_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORNADO_ALLOW_NETWORKS", "10.0.0.0/8, 127.0.0.1/32")
    policy = NetworkPolicy.build()
    assert policy.check_url("http://10.9.9.9/")
    assert NetworkPolicy.build([]).allow_networks == ()
    with pytest.raises(InvalidRequest, match="allow_networks"):
        NetworkPolicy.build(["not-a-network"])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "only http and https"),
        ("data:text/plain,hi", "only http and https"),
        ("ytsearch:cats", "only http and https"),
        ("ftp://example.com/x", "only http and https"),
        ("http://user:pw@example.com/", "credentials"),
        ("http:///nohost", "no host"),
        ("http://example.com:99999/", "malformed"),
    ],
)
def test_url_syntax_refusals(url: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        check_url_syntax(url)


def test_redaction() -> None:
    text = (
        "failed https://AKIA:s3cr3t@h.example/b?X-Amz-Signature=abcdef&X-Amz-Credential=AKIA/x&ok=1 "
        "with key hunter2-long"
    )
    out = redact(text, ["hunter2-long", None, ""])
    assert "s3cr3t" not in out and "abcdef" not in out and "hunter2-long" not in out
    assert "ok=1" in out and "h.example/b" in out
    assert strip_credentials("postgresql://u:pw@db:5432/x") == "postgresql://***@db:5432/x"


@given(st.text())
def test_redact_removes_any_secret(secret: str) -> None:
    if len(secret) < 4:
        return
    assert secret not in redact(f"a {secret} b {secret}", [secret])


@pytest.mark.parametrize(
    ("name", "ok"),
    [("media.0.mp4", True), ("media.f1.M4A", True), ("side.en.vtt", True), ("thumb.jpg", True),
     ("media.sh", False), ("payload.exe", False), ("page.html", False), ("mp4", False), (".mp4", False)],
)  # fmt: skip
def test_media_extensions(name: str, ok: bool) -> None:
    assert is_media_extension(name) is ok


def test_a_refused_address_says_how_to_allow_it() -> None:
    with pytest.raises(BlockedAddress) as caught:
        NetworkPolicy.build([]).resolve("127.0.0.1", 80)
    message = str(caught.value)
    assert "127.0.0.1" in message and "allow_networks=" in message
    assert "--allow-network" in message and "TORNADO_ALLOW_NETWORKS" in message


def test_remote_text_is_bounded_and_has_no_nul() -> None:
    assert remote_text("a\x00b\x00", 500) == "ab"  # PostgreSQL would refuse the record
    assert remote_text("x" * 600, 500) == "x" * 500
    assert remote_text("\x00", 500) is None
    assert remote_text("tab\tand\nline", 500) == "tab\tand\nline"  # other text is kept as sent

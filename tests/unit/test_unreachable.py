"""An origin the network guard cannot reach: classified as the source's network failure with the origin's
own cause, and a host that does not resolve is no bad request (pure, no I/O: an injected resolver)."""

from __future__ import annotations

import socket
from collections.abc import Sequence

import pytest
from yt_dlp.utils import DownloadError

from tornado_engine.errors import BlockedAddress, InvalidRequest, ResolveError, UnresolvableHost
from tornado_engine.retry import outcome_for
from tornado_engine.safety import NetworkPolicy, Resolver
from tornado_engine.ytdlp import classify, map_error, unreachable_cause

REFUSED = "Connection refused by 127.0.0.1:9"


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        # resolve phase, plain http: yt-dlp repeats the guard's reason phrase
        (f"ERROR: [generic] v: Unable to download webpage: HTTP Error 502: Origin unreachable ({REFUSED})",
         "network", REFUSED),
        # https: the CONNECT answer inside a proxy error
        (f"ERROR: [generic] v: Unable to download webpage: ('Unable to connect to proxy', OSError("
         f"'Tunnel connection failed: 502 Origin unreachable ({REFUSED})'))", "network", REFUSED),
        # download phase, text only
        ("ERROR: \r[download] Got error: HTTP Error 502: Origin unreachable (Cannot resolve host a.invalid)",
         "network", "Cannot resolve host a.invalid"),
        ("ERROR: HTTP Error 502: Origin unreachable (Connection to 10.1.2.3:80 timed out)",
         "timeout", "Connection to 10.1.2.3:80 timed out"),
    ],
)  # fmt: skip
def test_the_guards_502_is_the_origins_network_failure(text: str, kind: str, message: str) -> None:
    exc = DownloadError(text, (None, None, None))
    assert classify(exc) == kind
    mapped = map_error(exc, resolving=True)
    assert isinstance(mapped, ResolveError)
    assert (mapped.kind, mapped.message) == (kind, message)
    assert outcome_for(mapped.kind).transient
    # the fast path words a tunnel the guard refused its own way; same result
    fast = map_error(Exception(f"Got error: the network guard answered {text.split('HTTP Error ')[-1]}"),
                     resolving=False)  # fmt: skip
    assert (fast.kind, fast.message) == (kind, message)


def test_an_origins_own_502_stays_a_server_error() -> None:
    exc = DownloadError("ERROR: Unable to download webpage: HTTP Error 502: Bad Gateway", (None, None, None))
    assert unreachable_cause(str(exc)) is None
    assert (classify(exc), map_error(exc, resolving=True).message) == (
        "server_error", "Unable to download webpage: HTTP Error 502: Bad Gateway",
    )  # fmt: skip


def _resolver(answers: dict[str, list[str]]) -> Resolver:
    def resolve(host: str, port: int) -> Sequence[str]:
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return answers[host]

    return resolve


def test_an_unresolvable_host_is_its_own_invalid_request() -> None:
    policy = NetworkPolicy.build([], _resolver({}))
    with pytest.raises(UnresolvableHost) as caught:
        policy.check_url("https://nowhere.invalid/v.mp4", "webhook_url")
    assert isinstance(caught.value, InvalidRequest)  # still refused where a host must resolve now
    assert caught.value.field == "webhook_url"
    assert "nowhere.invalid" in caught.value.message


def test_an_injected_resolvers_addresses_are_judged() -> None:
    policy = NetworkPolicy.build([], _resolver({"cdn.test": ["93.184.216.34"], "inside.test": ["10.0.0.5"]}))
    assert [str(a) for a in policy.resolve("cdn.test", 443)] == ["93.184.216.34"]
    with pytest.raises(BlockedAddress):
        policy.resolve("inside.test", 443)

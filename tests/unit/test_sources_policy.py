"""Sources' pure policy (issue 16): proxy URLs and the pool's choice and health, the token bucket and
rate parsing, cookie jars and their matching, impersonation targets and allow-listed extractor args."""

from __future__ import annotations

import dataclasses
import urllib.request

import pytest

from tornado_engine.errors import InvalidRequest
from tornado_engine.sources.cookies import parse_cookies
from tornado_engine.sources.impersonation import check_extractor_args, check_target
from tornado_engine.sources.proxies import ProxyPool, parse_proxy
from tornado_engine.sources.ratelimit import Throttle, TokenBucket, parse_rate
from tornado_engine.sources.settings import JobSources, SourceSettings, impersonation_for

SECRET = "s3cr3t-pa55"


def test_proxy_urls_parse_and_never_show_the_password() -> None:
    proxy = parse_proxy(f"socks5://alice:{SECRET}@10.0.0.5:1080")
    assert (proxy.scheme, proxy.host, proxy.port, proxy.username) == ("socks5", "10.0.0.5", 1080, "alice")
    assert proxy.password == SECRET
    for shown in (repr(proxy), str(proxy), proxy.label, repr(ProxyPool([proxy]))):
        assert SECRET not in shown
    assert parse_proxy("http://p.example").port == 80 and parse_proxy("https://p.example").port == 443
    assert parse_proxy("socks5h://h:1").scheme == "socks5"
    assert parse_proxy(proxy.url()) == proxy  # the full URL round-trips (quoted credentials)
    too_long = f"socks5://u:{SECRET * 30}@h:1"
    for bad in ("ftp://h:1", "http://", "http://h:1/path", f"http://u:{SECRET}@h:99999", "nonsense",
                too_long):  # fmt: skip
        with pytest.raises(InvalidRequest) as caught:
            parse_proxy(bad)
        assert SECRET not in str(caught.value)


def _pool(rule: str = "round_robin", n: int = 3) -> ProxyPool:
    return ProxyPool([parse_proxy(f"http://10.0.0.{i}:8080") for i in range(n)], rule=rule,  # type: ignore[arg-type]
                     fail_limit=2, bench_seconds=30)  # fmt: skip


def test_round_robin_takes_turns() -> None:
    pool = _pool()
    picks = [pool.choose("j", "h", 0).host for _ in range(6)]
    assert picks == ["10.0.0.0", "10.0.0.1", "10.0.0.2"] * 2


def test_sticky_rules_keep_a_key_on_one_proxy() -> None:
    per_job, per_host = _pool("sticky_job"), _pool("per_host")
    assert len({per_job.choose("job-1", f"h{i}", 0) for i in range(10)}) == 1
    assert len({per_host.choose(f"job-{i}", "Example.com", 0) for i in range(10)}) == 1
    assert per_host.choose("a", "example.com", 0) == per_host.choose("b", "EXAMPLE.com", 0)
    assert len({per_job.choose(f"job-{i}", "h", 0) for i in range(30)}) > 1  # keys spread over the pool


def test_a_proxy_failing_in_a_row_is_benched_then_back() -> None:
    pool = _pool("sticky_job")
    first = pool.choose("job", "h", 0)
    assert pool.failed(first, 1) is False
    pool.succeeded(first)  # a success resets the count: failures must be in a row
    assert pool.failed(first, 2) is False
    assert pool.failed(first, 3) is True
    assert pool.benched(4) == [first]
    assert pool.choose("job", "h", 4) != first  # moved while benched
    assert pool.choose("job", "h", 34) == first  # back after bench_seconds


def test_all_benched_still_gives_the_one_back_soonest() -> None:
    pool = _pool(n=2)
    a, b = pool.proxies
    for _ in range(2):
        pool.failed(b, 0)
        pool.failed(a, 10)
    assert pool.choose("j", "h", 11) == b


def test_pool_settings_are_checked() -> None:
    with pytest.raises(InvalidRequest):
        ProxyPool([])
    with pytest.raises(InvalidRequest):
        _pool("random")


def test_token_bucket_gives_its_rate_over_time() -> None:
    bucket = TokenBucket(1000, now=0, burst=1000)
    assert bucket.take(1000, 0) == 0  # the burst
    assert bucket.take(500, 0) == pytest.approx(0.5)  # in debt: wait half a second
    assert bucket.take(500, 0.5) == pytest.approx(0.5)  # the wait paid the debt, now the next
    # a long run: total bytes / rate
    clock = 1.0
    for _ in range(100):
        clock += bucket.take(100, clock)
    assert clock - 1.0 == pytest.approx(100 * 100 / 1000, abs=1.0)  # 10 000 bytes at 1000/s


def test_throttle_charges_the_slowest_of_its_buckets() -> None:
    shared = TokenBucket(1000, 0, burst=0)
    own = TokenBucket(4000, 0, burst=0)
    throttle = Throttle(own, shared, clock=lambda: 0.0)
    assert throttle.charge(100) == pytest.approx(0.1)
    assert not Throttle() and Throttle().charge(10**9) == 0


def test_the_engine_bucket_is_shared_by_every_job() -> None:
    """Two jobs at 4000 B/s each under an engine cap of 1000 B/s: together they get 1000 B/s."""
    clock = [0.0]
    engine = TokenBucket(1000, 0, burst=0)
    jobs = [Throttle(TokenBucket(4000, 0, burst=0), engine, clock=lambda: clock[0]) for _ in range(2)]
    for _ in range(50):
        for throttle in jobs:  # each job waits its turn, as its thread would sleep
            clock[0] += throttle.charge(100)
    assert clock[0] == pytest.approx(2 * 50 * 100 / 1000)


def test_rates_parse_like_ytdlp() -> None:
    assert parse_rate("2M") == 2 * 1024**2
    assert parse_rate("500K") == 500 * 1024
    assert parse_rate("1.5MiB/s") == int(1.5 * 1024**2)
    assert parse_rate(4096) == 4096
    for bad in ("fast", "-1M", "10", 0):
        with pytest.raises(InvalidRequest):
            parse_rate(bad)


NETSCAPE = (
    "# Netscape HTTP Cookie File\n"
    "example.com\tFALSE\t/\tFALSE\t0\tsession\tabc123secret\n"
    ".media.test\tTRUE\t/private\tTRUE\t4102444800\ttoken\tzzz999secret\n"
    "#HttpOnly_old.test\tFALSE\t/\tFALSE\t1000\tgone\texpired-value\n"
)


def _header(jar: object, url: str) -> str | None:
    request = urllib.request.Request(url)
    jar.add_cookie_header(request)  # type: ignore[attr-defined]
    return request.get_header("Cookie")


def test_netscape_jar_matches_domain_path_secure_and_drops_expired() -> None:
    cookies = parse_cookies(NETSCAPE)
    assert cookies.domains == ("example.com", "media.test")
    assert "abc123secret" not in repr(cookies) and "secret" not in repr(cookies)
    jar = cookies.jar()
    assert _header(jar, "http://example.com/video") == "session=abc123secret"
    assert _header(jar, "http://other.example/video") is None  # never to another domain
    assert _header(jar, "http://evil-example.com/") is None
    assert _header(jar, "https://cdn.media.test/private/a.mp4") == "token=zzz999secret"
    assert _header(jar, "http://cdn.media.test/private/a.mp4") is None  # secure: https only
    assert _header(jar, "https://cdn.media.test/public/a.mp4") is None  # path
    assert "expired-value" not in cookies.text


def test_cookie_objects_and_merging() -> None:
    engine = parse_cookies([{"domain": "example.com", "name": "a", "value": "engine"}])
    tenant = parse_cookies([{"domain": "example.com", "name": "a", "value": "tenant", "secure": True},
                            {"domain": ".b.test", "name": "b", "value": "x" * 8}])  # fmt: skip
    merged = engine.merged(tenant)
    assert sorted(merged.values) == ["tenant", "x" * 8]
    assert merged.domains == ("b.test", "example.com")
    for bad in ([{"domain": "a b", "name": "n", "value": "v"}], [{"domain": "a.test", "name": "n",
                 "value": "v;w"}], ["not an object"], "garbage\twith\ttabs"):  # fmt: skip
        with pytest.raises(InvalidRequest) as caught:
            parse_cookies(bad)  # type: ignore[arg-type]
        assert "v;w" not in str(caught.value)


def test_impersonation_targets_are_validated() -> None:
    for good in ("chrome", "Chrome-136", "safari-18.0", "chrome-136:windows-10", "firefox:linux"):
        assert check_target(good, installed=False) == good.lower()
    for bad in ("netscape", "chrome; rm -rf", "chrome-", "", "chrome-136:windows-10:x"):
        with pytest.raises(InvalidRequest):
            check_target(bad, installed=False)


def test_impersonation_names_the_extra_when_curl_cffi_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from tornado_engine.sources import impersonation

    monkeypatch.setattr(impersonation, "impersonation_available", lambda: False)
    with pytest.raises(InvalidRequest, match=r"tornado-engine\[impersonate\]"):
        impersonation.check_target("chrome")


def test_extractor_args_only_from_the_allow_list() -> None:
    assert check_extractor_args({"YouTube": {"player_client": ["web", "tv"], "lang": "en"}}) == {
        "youtube": {"player_client": ["web", "tv"], "lang": ["en"]}
    }
    for bad in (
        {"youtube": {"cookiefile": ["/etc/passwd"]}},  # not allowed
        {"anything": {"player_client": ["web"]}},  # an extractor not in the list
        {"youtube": {"player_client": ["web client"]}},  # not a plain token
        {"youtube": {"player_client": []}},
        {"youtube": ["player_client"]},
    ):
        with pytest.raises(InvalidRequest):
            check_extractor_args(bad)  # type: ignore[arg-type]


def test_impersonation_per_host_and_job_parameters() -> None:
    by_host = {"example.com": "chrome", "*": "safari"}
    assert impersonation_for("https://www.example.com/v", by_host) == "chrome"
    assert impersonation_for("https://example.com/v", by_host) == "chrome"
    assert impersonation_for("https://other.test/v", by_host) == "safari"
    assert impersonation_for("https://other.test/v", {}) is None
    settings = SourceSettings.build(proxy=f"http://u:{SECRET}@10.0.0.1:3128", limit_rate="2M",
                                    cookies=NETSCAPE)  # fmt: skip
    sources = JobSources(cookies=settings.cookies, proxies=settings.proxies, limit_rate=settings.limit_rate)
    assert SECRET in sources.secrets() and "abc123secret" in sources.secrets()
    params = sources.ytdlp_params()
    assert params["ratelimit"] == 2 * 1024**2 and "proxy" not in params
    # behind the guard, which meters the job, yt-dlp gets no second limiter
    assert "ratelimit" not in dataclasses.replace(sources, metered=True).ytdlp_params()
    assert SECRET not in repr(settings) and "abc123secret" not in repr(settings) + repr(sources)

"""Pure tests of the request model, filename / folder rules and the job record (no I/O)."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tornado_engine.errors import InvalidRequest, StoreError
from tornado_engine.models import Job, JobRequest, check_folder, has_control_chars, sanitize_filename
from tornado_engine.states import Status, Step
from tornado_engine.store import open_store

URL = "https://example.com/watch?v=abc"


def make(**kw: Any) -> JobRequest:
    return JobRequest(**{"url": URL, **kw})


def refused(**kw: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        JobRequest(**kw)
    return info.value


# --------------------------------------------------------------------------- JobRequest: defaults


def test_defaults() -> None:
    req = JobRequest(url=URL)
    assert req.url == URL
    assert req.format == "mp4"
    assert req.video_codec == "copy"
    assert req.audio_codec == "copy"
    assert req.audio_bitrate == "192k"
    assert req.video_quality == 23
    assert req.filename is None
    assert req.folder is None
    assert req.webhook_url is None


def test_dump_omits_unset_optionals() -> None:
    dumped = make().model_dump(mode="json", exclude_none=True)
    assert (
        dumped.items()
        >= {
            "url": URL,
            "format": "mp4",
            "video_codec": "copy",
            "audio_codec": "copy",
            "audio_bitrate": "192k",
            "video_quality": 23,
        }.items()
    )
    assert None not in dumped.values()
    assert not {"filename", "folder", "webhook_url"} & dumped.keys()


def test_request_is_frozen() -> None:
    req = make()
    with pytest.raises(Exception):  # noqa: B017 - pydantic's ValidationError on frozen assignment
        req.format = "mkv"  # type: ignore[misc]


def test_invalid_request_is_a_value_error() -> None:
    exc = refused(url="")
    assert isinstance(exc, ValueError)
    assert str(exc) == exc.message


def test_from_dict() -> None:
    assert JobRequest.from_dict({"url": URL, "format": "MKV"}).format == "mkv"
    with pytest.raises(InvalidRequest, match="Request body must be an object"):
        JobRequest.from_dict(["not", "a", "dict"])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- JobRequest: url


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/v",
        "http://127.0.0.1:8765/direct.mp4",
        "HTTPS://EXAMPLE.COM/v",
        "https://example.com/a?b=c&d=e#frag",
    ],
)
def test_url_accepted(url: str) -> None:
    assert make(url=url).url == url


def test_url_is_stripped() -> None:
    assert make(url="  https://example.com/v \n").url == "https://example.com/v"


def test_url_missing() -> None:
    exc = refused()
    assert exc.field == "url"
    # NOTE: the missing-field path says "Url is required", the empty path "URL is required"
    assert exc.message.lower() == "url is required"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "URL is required"),
        ("   ", "URL is required"),
        (None, "URL is required"),
        (5, "URL is required"),
        ("https://" + "a" * 4096, "URL too long (max 4096 characters)"),
        ("https://example.com/a b", "URL contains spaces or control characters"),
        ("https://example.com/a\tb", "URL contains spaces or control characters"),
        ("https://example.com/\u202ebad", "URL contains spaces or control characters"),
        ("https://example.com/\x00", "URL contains spaces or control characters"),
        ("ftp://example.com/v", "URL must start with http:// or https://"),
        ("file:///etc/passwd", "URL must start with http:// or https://"),
        ("example.com/v", "URL must start with http:// or https://"),
        ("javascript:alert(1)", "URL must start with http:// or https://"),
        ("https://", "URL must start with http:// or https://"),
    ],
    ids=[
        "empty",
        "blank",
        "none",
        "not-a-string",
        "too-long",
        "space",
        "tab",
        "bidi",
        "nul",
        "ftp",
        "file",
        "no-scheme",
        "javascript",
        "scheme-only",
    ],
)
def test_url_refused(url: Any, message: str) -> None:
    exc = refused(url=url)
    assert exc.message == message
    assert exc.field == "url"


def test_url_at_max_length_accepted() -> None:
    url = "https://" + "a" * (4096 - len("https://"))
    assert make(url=url).url == url


# --------------------------------------------------------------------------- JobRequest: choices


@pytest.mark.parametrize(
    ("name", "choices"),
    [
        ("format", ["mp4", "mkv", "webm", "mov"]),
        ("video_codec", ["copy", "h264", "h265", "vp9"]),
        ("audio_codec", ["copy", "aac", "opus", "mp3"]),
        ("audio_bitrate", ["64k", "128k", "192k", "256k", "320k"]),
    ],
)
def test_choices_case_insensitive(name: str, choices: list[str]) -> None:
    for choice in choices:
        assert getattr(make(**{name: choice}), name) == choice
        assert getattr(make(**{name: choice.upper()}), name) == choice
        assert getattr(make(**{name: choice.capitalize()}), name) == choice


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("format", "avi", "Format must be one of: mp4, mkv, webm, mov (got 'avi')"),
        ("format", "", "Format must be one of: mp4, mkv, webm, mov (got '')"),
        ("format", None, "Format must be one of: mp4, mkv, webm, mov (got None)"),
        ("video_codec", "av1", "Video codec must be one of: copy, h264, h265, vp9 (got 'av1')"),
        ("audio_codec", "flac", "Audio codec must be one of: copy, aac, opus, mp3 (got 'flac')"),
        ("audio_bitrate", "192", "Audio bitrate must be one of: 64k, 128k, 192k, 256k, 320k (got '192')"),
        ("audio_bitrate", 192, "Audio bitrate must be one of: 64k, 128k, 192k, 256k, 320k (got 192)"),
    ],
)
def test_choice_refused(name: str, value: Any, message: str) -> None:
    exc = refused(url=URL, **{name: value})
    assert exc.message == message
    assert exc.field == name


# --------------------------------------------------------------------------- JobRequest: video_quality


@pytest.mark.parametrize("crf", [0, 1, 23, 50, 51])
def test_crf_accepted(crf: int) -> None:
    assert make(video_quality=crf).video_quality == crf


@pytest.mark.parametrize("crf", [-1, 52, 100, True, False, 23.0, "23", None])
def test_crf_refused(crf: Any) -> None:
    exc = refused(url=URL, video_quality=crf)
    assert exc.message == f"Video quality must be an integer CRF from 0 to 51 (got {crf!r})"
    assert exc.field == "video_quality"


# --------------------------------------------------------------------------- JobRequest: filename


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a\x00b", "Filename must not contain NUL characters"),
        ("..", "Filename must not contain '..'"),
        ("a..b", "Filename must not contain '..'"),
        ("../etc/passwd", "Filename must not contain '..'"),
        ("a/b", "Filename must not contain '/' or '\\'"),
        ("a\\b", "Filename must not contain '/' or '\\'"),
        ("/abs", "Filename must not contain '/' or '\\'"),
        ("x" * 256, "Filename too long (max 255 characters)"),
        ("", "Filename is empty after sanitizing"),
        ("   ", "Filename is empty after sanitizing"),
        ("---", "Filename is empty after sanitizing"),
        (".", "Filename is empty after sanitizing"),
        ("\u202e\u200b", "Filename is empty after sanitizing"),
        ("x" * 251, "Filename too long (max 255 bytes including the extension)"),
        ("\u00e9" * 126, "Filename too long (max 255 bytes including the extension)"),
        (5, "Filename must be a string"),
    ],
    ids=[
        "nul",
        "dotdot",
        "inner-dotdot",
        "traversal",
        "slash",
        "backslash",
        "absolute",
        "256-chars",
        "empty",
        "blank",
        "only-dashes",
        "only-dot",
        "only-format-chars",
        "251-bytes",
        "252-utf8-bytes",
        "not-a-string",
    ],
)
def test_filename_refused(value: Any, message: str) -> None:
    exc = refused(url=URL, filename=value)
    assert exc.message == message
    assert exc.field == "filename"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("My Video", "My Video"),
        ("  padded  ", "padded"),
        ("many    inner   spaces", "many inner spaces"),
        ("-rf", "rf"),
        ("--help", "help"),
        (".hidden", "hidden"),
        ("-.-x", "x"),
        ("e\u0301te\u0301", "\u00e9t\u00e9"),  # NFC
        ("line\nbreak", "line break"),
        ("tab\there", "tab here"),
        ("bell\x07x", "bell x"),
        ("rtl\u202eexe.mp4", "rtl exe.mp4"),  # bidi override
        ("zero\u200bwidth", "zero width"),
        ("para\u2029sep", "para sep"),
        ("x" * 250, "x" * 250),
        ("\u65e5\u672c\u8a9e", "\u65e5\u672c\u8a9e"),
        ("trailing dots.", "trailing dots."),
        ("colon: yes", "colon: yes"),
    ],
)
def test_filename_sanitized(value: str, expected: str) -> None:
    assert sanitize_filename(value) == expected
    assert make(filename=value).filename == expected


def test_filename_leading_dash_or_dot_behind_a_space_removed() -> None:
    # "- -x" collapses to "- -x", lstrip("-.") leaves " -x", strip() leaves "-x": an option-looking name.
    for value in ("- -x", ". .x", "-\u200b-x", ".\u200b.x", "- . -x"):
        out = sanitize_filename(value)
        assert not out.startswith(("-", ".")), (value, out)
    assert sanitize_filename("- -x") == "x"


def test_filename_made_only_of_dots_and_format_chars_refused() -> None:
    # ".\u200b." contains no "..", and sanitizing must not return "." (the current directory)
    with pytest.raises(ValueError):
        sanitize_filename(".\u200b.")


# --------------------------------------------------------------------------- JobRequest: folder


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a" * 201, "Folder name too long (max 200 characters)"),
        ("", "Folder name must not be empty"),
        ("   ", "Folder name must not be empty"),
        ("/abs", "Folder name must not start with '/' or '\\'"),
        ("\\abs", "Folder name must not start with '/' or '\\'"),
        ("..", "Folder name must not contain '..'"),
        ("a/../b", "Folder name must not contain '..'"),
        ("a/..", "Folder name must not contain '..'"),
        ("a\\b", "Folder name must not contain '\\' or control characters"),
        ("a\x00b", "Folder name must not contain '\\' or control characters"),
        ("a\nb", "Folder name must not contain '\\' or control characters"),
        ("a\u202eb", "Folder name must not contain '\\' or control characters"),
        ("a//b", "Folder name must not contain empty or '.' path segments"),
        ("a/ /b", "Folder name must not contain empty or '.' path segments"),
        ("./a", "Folder name must not contain empty or '.' path segments"),
        ("a/./b", "Folder name must not contain empty or '.' path segments"),
        (" /a", "Folder name must not contain empty or '.' path segments"),
        (".", "Folder name must not contain empty or '.' path segments"),
        (5, "Folder must be a string"),
    ],
    ids=[
        "201-chars",
        "empty",
        "blank",
        "slash",
        "backslash",
        "dotdot",
        "inner-dotdot",
        "trailing-dotdot",
        "inner-backslash",
        "nul",
        "newline",
        "bidi",
        "empty-segment",
        "blank-segment",
        "dot-first",
        "dot-inner",
        "space-then-slash",
        "dot",
        "not-a-string",
    ],
)
def test_folder_refused(value: Any, message: str) -> None:
    exc = refused(url=URL, folder=value)
    assert exc.message == message
    assert exc.field == "folder"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("shows", "shows"),
        ("shows/season 1", "shows/season 1"),
        ("shows/", "shows"),
        ("  shows / s1  ", "shows/s1"),
        ("a" * 200, "a" * 200),
        ("caf\u0065\u0301", "caf\u00e9"),
        (".hidden/x", ".hidden/x"),
    ],
)
def test_folder_accepted(value: str, expected: str) -> None:
    assert check_folder(value) == expected
    assert make(folder=value).folder == expected


def test_folder_limit_holds_after_normalization() -> None:
    # U+0958 is a composition exclusion: NFC turns each one into two code points, so a 150-character
    # folder passes the length check but comes out 300 characters long, and a request validated again
    # (one a record of another version keeps) could no longer be loaded.
    value = "\u0958" * 150
    try:
        out = check_folder(value)
    except ValueError:
        return  # refusing it is fine too
    assert len(out) <= 200
    assert check_folder(out) == out


# --------------------------------------------------------------------------- JobRequest: webhook / extras


def test_webhook_accepted() -> None:
    assert make(webhook_url=" https://hooks.example.com/x ").webhook_url == "https://hooks.example.com/x"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ftp://hooks.example.com", "Webhook URL must start with http:// or https://"),
        ("", "Webhook URL is required"),
        ("https://a b", "Webhook URL contains spaces or control characters"),
    ],
)
def test_webhook_refused(value: str, message: str) -> None:
    exc = refused(url=URL, webhook_url=value)
    assert exc.field == "webhook_url"
    assert exc.message == message


@pytest.mark.parametrize("name", ["proxy", "cookies", "outtmpl", "Format"])
def test_extra_fields_refused(name: str) -> None:
    exc = refused(url=URL, **{name: "x"})
    assert exc.message == f"Unknown field {name!r}"
    assert exc.field == name


def test_first_error_is_reported() -> None:
    exc = refused(url="", format="avi")
    assert exc.field == "url"


# --------------------------------------------------------------------------- property tests


_FORBIDDEN_CATEGORIES = ("Cc", "Cf", "Zl", "Zp")


def _check_sanitized(text: str) -> None:
    try:
        name = sanitize_filename(text)
    except ValueError:
        return
    assert name
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert ".." not in name
    assert not any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in name)
    assert not name.startswith(("-", "."))
    assert name == name.strip()
    assert len(name.encode()) <= 250
    assert unicodedata.is_normalized("NFC", name)
    assert sanitize_filename(name) == name  # idempotent: a stored record re-validates to itself


@given(st.text(max_size=300))
@example("\u00e9" * 200)
@example("x" * 255)
def test_sanitize_filename_property(text: str) -> None:
    _check_sanitized(text)


# the characters the rules are about, densely mixed
_TRICKY = "-. \u200b\u202e\u2028\xa0\x00\x07\n/\\ae\u0301\u0958\U0001f600"


@given(st.text(alphabet=st.sampled_from(_TRICKY), max_size=40))
@example("- -x")
@example(".\u200b.")
def test_sanitize_filename_property_tricky(text: str) -> None:
    _check_sanitized(text)


_folder_text = st.one_of(
    st.text(max_size=220),
    st.lists(st.text(alphabet=st.sampled_from("ab. /\\-\u00e9\u0301\u200b"), max_size=8), max_size=6).map(
        "/".join
    ),
)


@given(_folder_text)
@example("a//b")
@example(" /a")
@example("a/ /b")
def test_check_folder_property(text: str) -> None:
    try:
        folder = check_folder(text)
    except ValueError:
        return
    assert folder
    assert ".." not in folder
    assert not folder.startswith(("/", "\\"))
    assert "\\" not in folder and "\x00" not in folder
    segments = folder.split("/")
    assert all(seg and seg == seg.strip() and seg != "." for seg in segments)
    assert check_folder(folder) == folder


# --------------------------------------------------------------------------- Job.to_api / records


def _finished_fields() -> dict[str, Any]:
    return {
        "title": "Rick Astley - Never Gonna Give You Up",
        "folder": "shows",
        "download_speed_mbps": 45.2,
        "download_duration_ms": 3200,
        "mux_duration_ms": 1500,
        "upload_duration_ms": 2100,
        "file_size": 52428800,
        "download_retries": 1,
        "upload_retries": 0,
        "queue_wait_ms": 450,
        "requested_quality": "best",
        "actual_quality": "1080p",
        "finished_at": 1705507260000,
        "thumbnail_url": "https://cdn.example.com/videos/thumb.jpg",
    }


def make_job(**kw: Any) -> Job:
    return Job(
        id="550e8400-e29b-41d4-a716-446655440000", url=URL, request=make(), created_at=1705507200000, **kw
    )


_BASE = {"id", "url", "status", "s3_url", "subtitle_url", "error", "step", "created_at"}


@pytest.mark.parametrize("status", [Status.PENDING, Status.PROCESSING])
def test_to_api_active_job_has_base_fields_only(status: Status) -> None:
    job = make_job(status=status, step=Step.DOWNLOADING, **_finished_fields())
    out = job.to_api()
    assert set(out) <= _BASE
    assert out == {
        "id": job.id,
        "url": URL,
        "status": status.value,
        "step": "Downloading",
        "created_at": 1705507200000,
    }
    assert "thumbnail_url" not in out


def test_to_api_completed_job() -> None:
    job = make_job(
        status=Status.COMPLETED,
        step=Step.FINISHED,
        s3_url="https://cdn.example.com/videos/video.mp4?X-Amz-Algorithm=x",
        **_finished_fields(),
    )
    out = job.to_api()
    assert out["status"] == "Completed"
    assert out["step"] == "Finished"
    assert type(out["status"]) is str and type(out["step"]) is str
    for key, value in _finished_fields().items():
        assert out[key] == value
    assert out["s3_url"].startswith("https://cdn.example.com/")
    # never empty or None, and never internals
    assert all(v is not None and v != "" for v in out.values())
    for internal in ("request", "owner", "attempts", "progress", "storage_key", "started_at"):
        assert internal not in out
    assert json.loads(json.dumps(out)) == out


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(Status.FAILED, "error"), (Status.WARNING, "warning"), (Status.SKIPPED, "warning")],
)
def test_to_api_unsuccessful_job(status: Status, error_type: str) -> None:
    job = make_job(status=status, step=Step.DOWNLOADING, error="This video is private", error_type=error_type)
    job.finished_at = 1705507260000
    out = job.to_api()
    assert out["status"] == status.value
    assert out["error"] == "This video is private"
    assert out["error_type"] == error_type
    assert out["finished_at"] == 1705507260000
    assert "s3_url" not in out
    assert "title" not in out  # None omitted
    assert json.loads(json.dumps(out)) == out


def test_to_api_omits_empty_strings() -> None:
    job = make_job(status=Status.COMPLETED, step=Step.FINISHED, title="", error="", folder="")
    out = job.to_api()
    assert "title" not in out and "error" not in out and "folder" not in out


def test_to_api_keeps_zero_counts_once_finished() -> None:
    out = make_job(status=Status.COMPLETED, step=Step.FINISHED).to_api()
    assert out["download_retries"] == 0
    assert out["upload_retries"] == 0
    assert "download_retries" not in make_job().to_api()


def test_is_terminal() -> None:
    assert not make_job().is_terminal
    assert not make_job(status=Status.PROCESSING).is_terminal
    for status in (Status.COMPLETED, Status.FAILED, Status.WARNING, Status.SKIPPED):
        assert make_job(status=status).is_terminal


def test_job_defaults() -> None:
    job = Job(id="x", url=URL, request=make())
    assert job.status is Status.PENDING
    assert job.step is Step.QUEUED
    assert job.created_at > 1_600_000_000_000  # epoch milliseconds
    assert job.attempts == 0


def test_record_round_trip() -> None:
    req = make(format="MKV", filename=" My  Video ", folder="shows/s1/", webhook_url="https://h.example/x")
    job = make_job(
        status=Status.COMPLETED,
        step=Step.FINISHED,
        owner="tenant-1",
        attempts=2,
        progress=100.0,
        storage_key="videos/shows/s1/My Video.mkv",
        **_finished_fields(),
    )
    job.request = req
    record = job.to_record()
    assert record["status"] == "Completed" and record["step"] == "Finished"
    assert (
        record["request"].items()
        >= {
            "url": URL,
            "format": "mkv",
            "video_codec": "copy",
            "audio_codec": "copy",
            "audio_bitrate": "192k",
            "video_quality": 23,
            "filename": "My Video",
            "folder": "shows/s1",
            "webhook_url": "https://h.example/x",
        }.items()
    )
    text = json.dumps(record)  # JSON-ready
    back = Job.from_record(json.loads(text))
    assert back == job
    assert back.status is Status.COMPLETED and back.step is Step.FINISHED
    assert back.to_record() == record
    # the text the stores write: the record less the fields at their defaults, read back as the same job
    written = json.loads(job.record_text())
    request = written.pop("request")
    assert written.items() <= record.items() and request.items() <= record["request"].items()
    assert all(v in (None, 0, "", []) for k, v in record.items() if k not in written and k != "request")
    assert "audio_codec" not in request and request["format"] == "mkv"  # "copy" is the default
    written["request"] = request
    assert Job.from_record(written) == job == Job.from_record(json.loads(make_job().record_text()) | record)


def test_from_record_fills_what_an_older_record_lacks() -> None:
    record = make_job().to_record()
    for name in ("store_write_ms", "side_keys", "created_at"):
        del record[name]
    job = Job.from_record(record)
    assert job.store_write_ms is None and job.side_keys == [] and job.created_at > 0 and job.live is None
    with pytest.raises(KeyError):
        Job.from_record({k: v for k, v in record.items() if k != "id"})


def test_from_record_ignores_unknown_keys() -> None:
    record = make_job().to_record()
    record["some_future_field"] = 1
    assert Job.from_record(record) == make_job()


def test_a_stored_request_is_read_back_as_it_was_validated() -> None:
    # JobRequest.from_stored skips the validation it had at submit: the same model for every kind of field
    req = make(format="MKV", video_codec="h265", audio_bitrate="320k", video_quality=30, filename=" N ",
               folder="a/b/", webhook_url="https://h.example/x", enable_progress_webhook=True,
               max_resolution="720p", clip_start="1:00", clip_end=90.5, download_subtitles=True,
               subtitle_languages=["en", "pt-BR"], download_thumbnail=True, limit_rate="2M",
               reuse=False)  # fmt: skip
    job = make_job()
    job.request = req
    back = JobRequest.from_stored(json.loads(job.record_text())["request"])
    assert back == req and repr(back) == repr(req) and hash(back) == hash(req)
    assert back.model_dump(mode="json") == req.model_dump(mode="json")
    assert back.subtitle_languages == ("en", "pt-BR") and back.storage is None


@pytest.mark.parametrize(
    "ch", [chr(i) for i in range(128)] + ["\u00ad", "\u202e", "\u200b", "\x85", "é", "日"]
)
def test_control_characters_are_categories_cc_and_cf(ch: str) -> None:
    # ASCII text takes a regex, other text the category of each character: the same answer
    assert has_control_chars(f"a{ch}b") is (unicodedata.category(ch) in ("Cc", "Cf"))


def test_a_record_read_with_its_text_keeps_its_request_text() -> None:
    job = make_job(title='a,"request":{"url":"x"}}')  # the key's pattern in a value: escaped in the text
    job.request = make(format="mkv", folder="f")
    text = job.record_text()
    back = Job.from_record(json.loads(text), text)
    kept = back.__dict__["_request_text"]
    assert kept[0] is back.request and json.loads(kept[1]) == json.loads(text)["request"]
    assert back.record_text() == text and back == job
    older = json.dumps(job.to_record())  # the request in the middle, spaced: read, its text not kept
    assert "_request_text" not in Job.from_record(json.loads(older), older).__dict__


def test_a_stored_request_this_version_would_not_write_is_validated() -> None:
    with pytest.raises(InvalidRequest, match="Unknown field"):
        JobRequest.from_stored({"url": URL, "some_future_option": 1})
    with pytest.raises(InvalidRequest, match="URL is required"):
        JobRequest.from_stored({"format": "mp4"})


@given(st.text(max_size=60))
def test_record_round_trip_any_filename(text: str) -> None:
    try:
        req = make(filename=text)
    except InvalidRequest:
        return
    job = make_job()
    job.request = req
    assert Job.from_record(json.loads(json.dumps(job.to_record()))) == job


# --------------------------------------------------------------------------- store URL parsing


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///jobs.db", "jobs.db"),
        ("sqlite:///rel/dir/jobs.db", "rel/dir/jobs.db"),
        ("sqlite:////abs/dir/jobs.db", "/abs/dir/jobs.db"),
        ("sqlite:///:memory:", ":memory:"),
        ("/plain/path/jobs.db", "/plain/path/jobs.db"),
        ("jobs.db", "jobs.db"),
    ],
)
def test_open_store_url(url: str, path: str) -> None:
    store = open_store(url)
    assert type(store).__name__ == "SQLiteStore"
    assert store.path == path  # type: ignore[attr-defined]


@pytest.mark.parametrize("url", ["mysql://u@h/db", "redis://localhost", "s3://bucket/jobs"])
def test_open_store_unsupported_scheme(url: str) -> None:
    with pytest.raises(StoreError, match="unsupported store URL scheme"):
        open_store(url)

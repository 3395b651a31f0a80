"""Requests, job records and results (pure: no I/O).

``JobRequest`` validates every field at the boundary and raises :class:`InvalidRequest` naming the field;
``Job`` is the record carried through the pipeline and stored; ``Job.to_api()`` is TornadoAPI's JSON.
"""

from __future__ import annotations

import dataclasses
import re
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import options
from .api_types import JobAPI
from .codecs import (
    AUDIO_BITRATES,
    AUDIO_CHOICES,
    AUDIO_CONTAINERS,
    VIDEO_CHOICES,
    VIDEO_CONTAINERS,
    AudioBitrate,
    AudioChoice,
    AudioContainer,
    VideoChoice,
    VideoContainer,
    check_combination,
)
from .errors import InvalidRequest
from .jsontext import dumps
from .progress import LiveProgress
from .safety import strip_credentials
from .sources.impersonation import check_target
from .sources.ratelimit import parse_rate
from .states import TERMINAL, Status, Step
from .storage.config import StorageConfig

__all__ = [
    "Job",
    "JobCreated",
    "JobRequest",
    "check_folder",
    "has_control_chars",
    "name_from_title",
    "now_ms",
    "sanitize_filename",
]

_CHOICES: dict[str, tuple[str, ...]] = {
    "format": VIDEO_CONTAINERS,
    "video_codec": VIDEO_CHOICES,
    "audio_codec": AUDIO_CHOICES,
    "audio_bitrate": AUDIO_BITRATES,
    "audio_format": AUDIO_CONTAINERS,
    "quality_preset": tuple(options.QUALITY_PRESETS),
}
_MAX_URL = 4096
_MAX_FILENAME = 255
_MAX_FOLDER = 200


# JobRequest's JSON Schema (model_json_schema()): what each field means, and the forms the validators
# accept that the annotations alone do not say. Schema only: the field validators below enforce them.
_FIELD_DOCS: dict[str, str] = {
    "reuse": "Take an identical earlier job's stored file, not a new download (None: the engine's default).",
    "impersonate": "A browser for yt-dlp to imitate (``chrome``, ``safari-17``; the ``impersonate`` extra).",
    "limit_rate": "At most this many bytes/s for this job's transfers (``2M``, ``500K`` or a number).",
    "url": "The media, page, manifest, playlist or feed to fetch (http or https, no credentials).",
    "format": "The output container.",
    "video_codec": "``copy`` keeps the source's video; else it is encoded (CRF ``video_quality``).",
    "audio_codec": "``copy`` keeps the source's audio if the container takes it (else aac; opus for webm).",
    "audio_bitrate": "Bitrate of encoded audio.",
    "video_quality": "CRF when the video is encoded (0 best - 51 worst); ignored for ``copy``.",
    "filename": "The stored file's name without extension (sanitized; no ``..`` or slashes); default: title.",
    "folder": "A folder under the storage's base folder (no ``..``, not starting with ``/``).",
    "webhook_url": "Receives signed POSTs (Standard Webhooks) when the job ends.",
    "paused": "For a playlist or show URL: create its batch paused (rename its jobs, then start it).",
    "enable_progress_webhook": "Also POST stage events to ``webhook_url`` (downloading 0% ... completed).",
    "audio_only": "Only the best audio, stored as ``audio_format``.",
    "audio_format": "With ``audio_only``: m4a (default), mp3, ogg or opus.",
    "max_resolution": 'A cap on the video\'s shorter side: ``best``, or 2160 ... 360 (720 = "720p").',
    "quality_preset": "Encoder CRF and speed per codec (overrides ``video_quality``); needs a video codec.",
    "clip_start": "Start of a clip, in seconds (``HH:MM:SS``, ``MM:SS`` or seconds; fractions allowed).",
    "clip_end": "End of a clip, after ``clip_start``; same forms.",
    "download_subtitles": "Store the source's own subtitles (not automatic captions) beside the media.",
    "subtitle_languages": "With ``download_subtitles``: codes such as ``en`` or ``pt-BR`` (default en).",
    "download_thumbnail": "Store the source's thumbnail beside the media.",
    "live_recording": "Record a live stream until it ends or for ``max_duration`` s (else it is Skipped).",
    "live_from_start": "With ``live_recording``: record from the stream's beginning.",
    "max_duration": "With ``live_recording``: seconds to record at most.",
    "wait_for_video": "With ``live_recording``: seconds to wait for a scheduled stream to start.",
    "storage": "A storage for this job only (never dumped: the engine keeps it encrypted with the job).",
}
_SCHEMA_EXTRA: dict[str, dict[str, Any]] = {
    "url": {"format": "uri", "maxLength": _MAX_URL},
    "webhook_url": {"format": "uri", "maxLength": _MAX_URL},
    "filename": {"maxLength": _MAX_FILENAME},
    "folder": {"maxLength": _MAX_FOLDER},
    "video_quality": {"minimum": 0, "maximum": 51},
    "max_duration": {"minimum": 1, "maximum": options.MAX_WAIT_SECONDS},
    "wait_for_video": {"minimum": 1, "maximum": options.MAX_WAIT_SECONDS},
    # the values the validator stores, and their "720p" forms
    "max_resolution": {"enum": [*options.MAX_RESOLUTIONS, *(f"{r}p" for r in options.MAX_RESOLUTIONS[1:])]},
}


def _describe(schema: dict[str, Any]) -> None:
    for name, field_schema in schema.get("properties", {}).items():
        field_schema["description"] = _FIELD_DOCS.get(name, "")
        field_schema.update(_SCHEMA_EXTRA.get(name, {}))


def now_ms() -> int:
    return int(time.time() * 1000)


def has_control_chars(text: str) -> bool:
    # Cc = control characters, Cf = format characters (bidi overrides, zero-width joiners...). ASCII has
    # no Cf and its Cc are 0-31 and 127: one regex pass instead of a category look-up per character
    if text.isascii():
        return _ASCII_CONTROL.search(text) is not None
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


_ASCII_CONTROL = re.compile("[\x00-\x1f\x7f]")


class JobRequest(BaseModel):
    """What a caller asks for: the fields and rules of TornadoAPI's POST /jobs."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_describe)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, strip_credentials(value) if name in ("url", "webhook_url") and value else value

    url: str
    format: VideoContainer = "mp4"
    video_codec: VideoChoice = "copy"
    audio_codec: AudioChoice = "copy"
    audio_bitrate: AudioBitrate = "192k"
    video_quality: int = 23
    filename: str | None = None
    folder: str | None = None
    webhook_url: str | None = None
    paused: bool = False  # a playlist/show URL creates its batch paused (rename, then start_batch)
    enable_progress_webhook: bool = False  # also POST stage events (downloading 0% ... completed 100%)
    # media options (rules and meaning: tornado_engine.options)
    audio_only: bool = False
    audio_format: AudioContainer | None = None  # with audio_only; m4a when unset
    max_resolution: options.MaxResolution = "best"  # on the shorter side
    quality_preset: options.QualityPreset | None = None  # overrides video_quality (CRF)
    clip_start: float | None = None  # seconds; given as HH:MM:SS, MM:SS or seconds
    clip_end: float | None = None
    download_subtitles: bool = False
    subtitle_languages: tuple[str, ...] | None = None  # with download_subtitles; ("en",) when unset
    download_thumbnail: bool = False
    live_recording: bool = False
    live_from_start: bool = False
    max_duration: int | None = None  # seconds of a live recording
    wait_for_video: int | None = None  # seconds to wait for a scheduled stream to start
    # a storage target for this job only; never dumped: the engine keeps it sealed (encrypted) with the job
    storage: StorageConfig | None = Field(default=None, exclude=True, repr=False)
    # sources (issue 16): a browser to imitate (yt-dlp's impersonate, the [impersonate] extra), bytes/s
    impersonate: str | None = None
    limit_rate: int | None = None
    # take the file of an earlier identical job instead of downloading again (None: the engine's default)
    reuse: bool | None = None

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise _as_invalid_request(exc) from None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobRequest:
        if not isinstance(data, dict):
            raise InvalidRequest("Request body must be an object")
        return cls(**data)

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> JobRequest:
        """A request as a job record keeps it (validated at submit, then dumped), without validating it
        again: every claim and read parses one (~2 us instead of ~16). A record this version did not
        write as it would (an unknown field, no URL) is validated as a caller's request is."""
        if "url" not in data or not data.keys() <= _REQUEST_FIELDS:
            return cls.from_dict(dict(data))
        values = dict(_REQUEST_DEFAULTS)  # every field, in the model's order (its repr's)
        values.update(data)
        if (languages := values["subtitle_languages"]) is not None:
            values["subtitle_languages"] = tuple(languages)  # a JSON array; the model keeps a tuple
        request = cls.__new__(cls)
        # what pydantic's model_construct sets, without its per-field alias and default handling
        object.__setattr__(request, "__dict__", values)
        object.__setattr__(request, "__pydantic_fields_set__", set(data))
        object.__setattr__(request, "__pydantic_extra__", None)
        object.__setattr__(request, "__pydantic_private__", None)
        return request

    @field_validator("url", mode="before")
    @classmethod
    def _check_url(cls, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("URL is required")
        url: str = value.strip()
        if len(url) > _MAX_URL:
            raise ValueError(f"URL too long (max {_MAX_URL} characters)")
        if has_control_chars(url) or " " in url:
            raise ValueError("URL contains spaces or control characters")
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest:
            raise ValueError("URL must start with http:// or https://")
        return url

    @field_validator("format", "video_codec", "audio_codec", "audio_bitrate", mode="before")
    @classmethod
    def _check_choice(cls, value: Any, info: Any) -> Any:
        return _choice(value, info.field_name)

    @field_validator("video_quality", mode="before")
    @classmethod
    def _check_crf(cls, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 51:
            raise ValueError(f"Video quality must be an integer CRF from 0 to 51 (got {value!r})")
        return value

    @field_validator("filename", mode="before")
    @classmethod
    def _check_filename(cls, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("Filename must be a string")
        return sanitize_filename(value)

    @field_validator("folder", mode="before")
    @classmethod
    def _check_folder(cls, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("Folder must be a string")
        return check_folder(value)

    @field_validator("webhook_url", mode="before")
    @classmethod
    def _check_webhook(cls, value: Any) -> str | None:
        if value is None:
            return None
        try:
            return cls._check_url(value)
        except ValueError as exc:
            raise ValueError(f"Webhook {exc}") from None

    @field_validator("audio_format", "quality_preset", mode="before")
    @classmethod
    def _check_option_choice(cls, value: Any, info: Any) -> Any:
        return None if value is None else _choice(value, info.field_name)

    @field_validator("max_resolution", mode="before")
    @classmethod
    def _check_max_resolution(cls, value: Any) -> str:
        return options.parse_max_resolution(value)

    @field_validator("clip_start", "clip_end", mode="before")
    @classmethod
    def _check_clip(cls, value: Any, info: Any) -> float | None:
        return options.parse_clip_time(value, info.field_name.replace("_", " ").capitalize())

    @field_validator("max_duration", "wait_for_video", mode="before")
    @classmethod
    def _check_seconds(cls, value: Any, info: Any) -> int | None:
        return options.parse_seconds(value, info.field_name.replace("_", " ").capitalize())

    @field_validator("subtitle_languages", mode="before")
    @classmethod
    def _check_languages(cls, value: Any) -> tuple[str, ...] | None:
        return options.parse_languages(value)

    @field_validator(
        "audio_only", "download_subtitles", "download_thumbnail", "live_recording", "live_from_start",
        mode="before",
    )  # fmt: skip
    @classmethod
    def _check_flag(cls, value: Any, info: Any) -> bool:
        if not isinstance(value, bool):  # no "false" strings that pydantic would read as False
            raise ValueError(f"{info.field_name} must be true or false (got {value!r})")
        return value

    @field_validator("impersonate", mode="before")
    @classmethod
    def _check_impersonate(cls, value: Any) -> str | None:
        return None if value is None else check_target(value, installed=False)

    @field_validator("limit_rate", mode="before")
    @classmethod
    def _check_limit_rate(cls, value: Any) -> int | None:
        return None if value is None else parse_rate(value)

    @field_validator("reuse", mode="before")
    @classmethod
    def _check_reuse(cls, value: Any) -> bool | None:
        if value is not None and not isinstance(value, bool):
            raise ValueError(f"reuse must be true or false (got {value!r})")
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> JobRequest:
        # whole-request rules, once every field is valid: containers vs codecs, then the media options
        if not self.audio_only:
            check_combination(self.format, self.video_codec, self.audio_codec)
        options.check_combinations(self)
        return self


def _choice(value: Any, name: str) -> str:
    choices = _CHOICES[name]
    if isinstance(value, str) and value.lower() in choices:
        return value.lower()
    label = name.replace("_", " ").capitalize()
    raise ValueError(f"{label} must be one of: {', '.join(choices)} (got {value!r})")


def sanitize_filename(value: str) -> str:
    """Refuse what can escape a folder; tidy the rest into one safe path component."""
    if "\x00" in value:
        raise ValueError("Filename must not contain NUL characters")
    if ".." in value:
        raise ValueError("Filename must not contain '..'")
    if "/" in value or "\\" in value:
        raise ValueError("Filename must not contain '/' or '\\'")
    if len(value) > _MAX_FILENAME:
        raise ValueError(f"Filename too long (max {_MAX_FILENAME} characters)")
    name = unicodedata.normalize("NFC", value)
    name = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in name)
    name = " ".join(name.split()).lstrip("-. ")
    if not name:
        raise ValueError("Filename is empty after sanitizing")
    if len(name.encode()) > _MAX_FILENAME - 5:  # room for ".mp4" etc. on byte-limited filesystems
        raise ValueError(f"Filename too long (max {_MAX_FILENAME} bytes including the extension)")
    return name


def name_from_title(title: str | None) -> str | None:
    """A safe file or folder name made from remote text such as a title; None if nothing is left."""
    if not title:
        return None
    cleaned = title.replace("/", " ").replace("\\", " ").replace("\x00", "")
    while ".." in cleaned:
        cleaned = cleaned.replace("..", ".")
    try:
        return sanitize_filename(cleaned[:200])
    except ValueError:
        return None


def check_folder(value: str) -> str:
    value = unicodedata.normalize("NFC", value)  # NFC can lengthen text: check the stored form
    if len(value) > _MAX_FOLDER:
        raise ValueError(f"Folder name too long (max {_MAX_FOLDER} characters)")
    if not value.strip():
        raise ValueError("Folder name must not be empty")
    if value.startswith(("/", "\\")):
        raise ValueError("Folder name must not start with '/' or '\\'")
    if ".." in value:
        raise ValueError("Folder name must not contain '..'")
    if "\\" in value or "\x00" in value or has_control_chars(value):
        raise ValueError("Folder name must not contain '\\' or control characters")
    folder = value.strip().rstrip("/")
    parts = folder.split("/")
    if any(not part.strip() or part.strip() == "." for part in parts):
        raise ValueError("Folder name must not contain empty or '.' path segments")
    return "/".join(part.strip() for part in parts)


def _as_invalid_request(exc: ValidationError) -> InvalidRequest:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or None
    if err["type"] == "value_error":
        cause = err.get("ctx", {}).get("error")
        message = str(cause) if cause is not None else err["msg"]
        if isinstance(cause, InvalidRequest) and cause.field:  # whole-request rules name their field
            loc = cause.field
    elif err["type"] == "missing":
        label = "URL" if loc == "url" else (loc or "field").replace("_", " ").capitalize()
        message = f"{label} is required"
    elif err["type"] == "extra_forbidden":
        message = f"Unknown field {loc!r}"
    else:
        message = f"{loc}: {err['msg']}"
    return InvalidRequest(message, field=loc)


_OPEN = tuple(status for status in Status if status not in TERMINAL)  # Pending, Processing

# JobRequest.from_stored: the fields, with the defaults of those a record may leave out (all immutable;
# the URL's None is always replaced)
_REQUEST_FIELDS = frozenset(JobRequest.model_fields)
_REQUEST_DEFAULTS = {
    name: None if f.is_required() else f.default for name, f in JobRequest.model_fields.items()
}


class JobCreated(BaseModel):
    job_id: str


# Fields TornadoAPI returns for every job; the rest only once the job has finished.
_BASE_FIELDS = ("id", "url", "status", "s3_url", "subtitle_url", "error", "step", "created_at")
_FINISHED_FIELDS = (
    "title",
    "description",
    "release_date",
    "folder",
    "batch_id",
    "download_speed_mbps",
    "upload_speed_mbps",
    "download_duration_ms",
    "mux_duration_ms",
    "upload_duration_ms",
    "total_duration_ms",
    "file_size",
    "download_retries",
    "upload_retries",
    "queue_wait_ms",
    "io_pool_wait_ms",
    "cpu_pool_wait_ms",
    "upload_pool_wait_ms",
    "requested_quality",
    "actual_quality",
    "native_video_codec",
    "native_audio_codec",
    "download_strategy",
    "error_type",
    "webhook_status",
    "webhook_attempts",
    "file_deleted_at",
    "finished_at",
)


@dataclass
class Job:
    """One job's record. Plain data: the store persists it, the stages fill it in."""

    id: str
    url: str
    request: JobRequest
    owner: str = ""
    status: Status = Status.PENDING
    step: Step = Step.QUEUED
    created_at: int = field(default_factory=now_ms)
    started_at: int | None = None
    finished_at: int | None = None
    attempts: int = 0
    progress: float = 0.0
    title: str | None = None
    description: str | None = None
    release_date: str | None = None
    folder: str | None = None
    batch_id: str | None = None
    download_speed_mbps: float | None = None
    upload_speed_mbps: float | None = None
    download_duration_ms: int | None = None
    mux_duration_ms: int | None = None
    upload_duration_ms: int | None = None
    total_duration_ms: int | None = None
    file_size: int | None = None
    download_retries: int = 0
    upload_retries: int = 0
    queue_wait_ms: int | None = None
    io_pool_wait_ms: int | None = None
    cpu_pool_wait_ms: int | None = None
    upload_pool_wait_ms: int | None = None
    requested_quality: str | None = None
    actual_quality: str | None = None
    native_video_codec: str | None = None
    native_audio_codec: str | None = None
    download_strategy: str | None = None
    error: str | None = None
    error_type: str | None = None
    s3_url: str | None = None
    subtitle_url: str | None = None
    thumbnail_url: str | None = None
    storage_key: str | None = None
    storage_url: str | None = None  # the target the file went to (no credentials), for delete_file
    side_keys: list[str] = field(default_factory=list)  # subtitles and thumbnail stored beside it
    storage_sealed: str | None = None  # the request's own storage config, encrypted (SecretBox)
    file_deleted_at: int | None = None
    reserved_bytes: int = 0  # expected size while in flight, counted in usage()
    webhook_status: str | None = None
    webhook_attempts: int | None = None
    # what the stages have finished, so a rescued attempt resumes there (see tornado_engine.checkpoint)
    checkpoint: dict[str, Any] | None = None
    # what the file is made of, for reuse (tornado_engine.reuse): set once the source is resolved
    source_key: str | None = None
    output_key: str | None = None
    reused_from: str | None = None  # the finished job whose stored file this one took
    # times its attempts waited for a source host's back-off (a 429 or a bot check, this job's or another's)
    host_waits: int = 0
    # a Processing job's latest progress as its worker stored it (read from the store, never in the record)
    live: LiveProgress | None = None
    # where a job's fixed cost goes (in the record, not in TornadoAPI's fields): the submit's playlist
    # probe, the last resolve, and the attempt's store writes before its terminal one (steps, reservation)
    probe_duration_ms: int | None = None
    resolve_duration_ms: int | None = None
    store_write_ms: int | None = None

    @property
    def is_terminal(self) -> bool:
        # not a set look-up: an Enum's hash is a Python call, and this is asked several times per write
        return self.status not in _OPEN

    def to_api(self) -> JobAPI:
        """TornadoAPI's GET /jobs/{id} JSON: base fields while active, all once finished, no empty ones."""
        names = _BASE_FIELDS + (_FINISHED_FIELDS if self.is_terminal else ())
        out: dict[str, Any] = {}
        for name in names:
            value = getattr(self, name)
            if value is None or value == "":
                continue
            out[name] = value.value if isinstance(value, Status | Step) else value
        out["url"] = strip_credentials(self.url)  # tokens in the source URL stay in the store only
        if self.thumbnail_url and self.is_terminal:
            out["thumbnail_url"] = self.thumbnail_url
        if self.reused_from and self.is_terminal:  # beyond TornadoAPI: an extra field, none changed
            out["reused_from"] = self.reused_from
        if self.live is not None and self.status is Status.PROCESSING:
            # beyond TornadoAPI, which shows only the step: a field of its own keeps its shape valid
            out["progress"] = {k: v for k, v in self.live.to_dict().items() if k != "step"}
        return cast(JobAPI, out)

    def __repr__(self) -> str:
        return (
            f"Job(id={self.id!r}, status={self.status.value!r}, step={self.step.value!r}, "
            f"url={strip_credentials(self.url)!r}, owner={self.owner!r})"
        )

    def to_record(self) -> dict[str, Any]:
        """Everything, JSON-ready, for the store."""
        # a shallow copy: the store writes a job several times per run, and asdict's deep copy of the
        # request model was most of the scheduler's CPU
        data = {name: getattr(self, name) for name in _RECORD_FIELDS}
        data["side_keys"] = list(self.side_keys)
        data["request"] = self._request_record()
        data["status"] = self.status.value
        data["step"] = self.step.value
        return data

    def record_text(self) -> str:
        """:meth:`to_record` as compact JSON text, as the stores keep it, without the fields that are at
        their defaults (None for most until a job ends, 0 for counters; :meth:`from_record` puts them
        back), its request likewise. A job is written ~6 times per attempt: its request's part is
        encoded once per request object."""
        values = self.__dict__
        # status and step are StrEnums, and side_keys is encoded at once: all go in as they are
        data = {name: values[name] for name in _ALWAYS_WRITTEN}
        data.update({name: value for name in _NONE_BY_DEFAULT if (value := values[name]) is not None})
        for name, default in _OTHER_DEFAULTS:  # a None here is kept: it would not read back as None
            if (value := values[name]) != default:
                data[name] = value
        cached = values.get("_request_text")
        if cached is None or cached[0] is not self.request:
            text = dumps(self.request.model_dump(mode="json", exclude_defaults=True))
            cached = values["_request_text"] = (self.request, text)
        return f'{dumps(data)[:-1]},"request":{cached[1]}}}'

    def _request_record(self) -> dict[str, Any]:
        # the request does not change while the job runs: dump it once per request object
        cached = self.__dict__.get("_request_dump")
        if cached is None or cached[0] is not self.request:
            cached = (self.request, self.request.model_dump(mode="json", exclude_none=True))
            self.__dict__["_request_dump"] = cached
        return dict(cached[1])

    @classmethod
    def from_record(cls, data: dict[str, Any], text: str | None = None) -> Job:
        """A stored record as a Job, without the dataclass's keyword ``__init__`` (~50 arguments, a third
        of a claim's parsing): the defaults, then what the record has (never "live": its own column).
        ``text``: the JSON text ``data`` was parsed from; its request's part is kept for the next
        :meth:`record_text` (a claimed job would encode its request again on its first write)."""
        values = dict(_DEFAULTS)
        values.update({k: v for k, v in data.items() if k in _RECORD_SET})
        for name, make in _FACTORIES:
            if name not in values:
                values[name] = make()
        values["id"], values["url"] = data["id"], data["url"]  # required: a KeyError names a broken record
        values["request"] = JobRequest.from_stored(data["request"])
        values["status"] = _STATUSES.get(data["status"]) or Status(data["status"])  # (names a bad one)
        values["step"] = _STEPS.get(data["step"]) or Step(data["step"])
        if text is not None and (request_text := _request_text(data, text)) is not None:
            values["_request_text"] = (values["request"], request_text)
        job = object.__new__(cls)
        job.__dict__.update(values)
        return job


def _request_text(data: dict[str, Any], text: str) -> str | None:
    """The request's part of a record's text, as :meth:`Job.record_text` wrote it: last, compact. The
    last ``,"request":{`` is its key: in JSON text that can only be a key (a quote in a string is
    escaped), and no field of the request is called so. None for a record written otherwise."""
    if next(reversed(data), None) != "request" or not text.endswith("}}"):
        return None
    at = text.rfind(',"request":{')
    return text[at + 11 : -1] if at > 0 else None


_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(Job) if f.name != "live")
_RECORD_SET = frozenset(_RECORD_FIELDS)
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Job) if f.default is not dataclasses.MISSING}
# record_text leaves out a field at its default: None for most (an identity test), a value for a few
# (side_keys' factory makes []); the fields without a default, status and step are always written
_TEXT_DEFAULTS = {**_DEFAULTS, "side_keys": []}
_ALWAYS_WRITTEN = tuple(
    n for n in _RECORD_FIELDS if n not in _TEXT_DEFAULTS or n in ("status", "step") if n != "request"
)
_NONE_BY_DEFAULT = tuple(n for n in _RECORD_FIELDS if n in _TEXT_DEFAULTS and _TEXT_DEFAULTS[n] is None)
_OTHER_DEFAULTS = tuple(
    (n, d)
    for n, d in _TEXT_DEFAULTS.items()
    if d is not None and n not in _ALWAYS_WRITTEN and n in _RECORD_SET
)
# enum members by value: a dict look-up, not the enum's call (each claim and read makes two)
_STATUSES = {s.value: s for s in Status}
_STEPS = {s.value: s for s in Step}
_FACTORIES = [
    (f.name, f.default_factory)
    for f in dataclasses.fields(Job)
    if f.default_factory is not dataclasses.MISSING
]

"""The JSON shapes the public results dump to, as TypedDicts (pure typing: no I/O, no behaviour).

``Job.to_api()`` -> :class:`JobAPI` (TornadoAPI's GET /jobs/{id}), ``Event.to_api()`` -> :class:`EventAPI`,
``MediaMetadata.to_api()`` -> :class:`MediaMetadataAPI` (POST /metadata). Keys that are left out when empty
are not required. A JSON Schema of each: ``pydantic.TypeAdapter(JobAPI).json_schema()``.
"""

from __future__ import annotations

from typing import Required, TypedDict

__all__ = ["EventAPI", "JobAPI", "LiveProgressAPI", "MediaMetadataAPI"]


class JobAPI(TypedDict, total=False):
    """A job: the first eight keys while Pending or Processing, the rest once it has ended."""

    id: Required[str]
    url: Required[str]  # without credentials or tokens
    status: Required[str]  # Pending, Processing, Completed, Failed, Warning, Skipped, Cancelled
    s3_url: str  # where the file is (a signed URL, or file:// for local storage)
    subtitle_url: str
    error: str
    step: Required[str]  # queued, downloading, muxing, uploading, finished
    created_at: Required[int]  # epoch milliseconds, as every timestamp here
    title: str
    description: str
    release_date: str
    folder: str
    batch_id: str
    download_speed_mbps: float
    upload_speed_mbps: float
    download_duration_ms: int
    mux_duration_ms: int
    upload_duration_ms: int
    total_duration_ms: int
    file_size: int
    download_retries: int
    upload_retries: int
    queue_wait_ms: int
    io_pool_wait_ms: int
    cpu_pool_wait_ms: int
    upload_pool_wait_ms: int
    requested_quality: str  # best, 720p, audio
    actual_quality: str  # 360p, or an audio bitrate (128k)
    native_video_codec: str
    native_audio_codec: str
    download_strategy: str  # fastpath or ytdlp
    error_type: str  # error or warning
    webhook_status: str  # pending, delivered, failed
    webhook_attempts: int
    file_deleted_at: int
    finished_at: int
    thumbnail_url: str
    progress: LiveProgressAPI  # a Processing job's latest stored progress (beyond TornadoAPI)


class LiveProgressAPI(TypedDict, total=False):
    """A running job's latest progress as its worker stored it (about once a second)."""

    percent: Required[float]  # of the whole job, 0-100
    stage_percent: float
    bytes_done: int
    bytes_total: int
    speed_bps: float
    eta_seconds: float
    updated_at: int  # epoch milliseconds


class EventAPI(TypedDict, total=False):
    """One progress or state change of a job."""

    job_id: Required[str]
    status: Required[str]
    step: Required[str]
    percent: Required[float]  # of the whole job, 0-100
    stage_percent: Required[float]  # of the current stage
    bytes_done: int
    bytes_total: int
    speed_bps: float
    eta_seconds: float
    message: str
    batch_id: str


class MediaMetadataAPI(TypedDict, total=False):
    """What is behind a URL (TornadoAPI's POST /metadata)."""

    title: str
    duration: float  # seconds
    width: int
    height: int
    extractor: str
    uploader: str
    thumbnail: str
    description: str
    view_count: int
    like_count: int
    upload_date: str  # YYYYMMDD
    filesize_approx: int
    live_status: str
    qualities: Required[list[str]]  # ["720p", "480p", "360p"], best first
    subtitle_languages: Required[list[str]]

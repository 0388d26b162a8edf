"""The failure classes a record can carry, each permanent or retryable.

Every producer (frame extraction, the API client, the model adapters, the runner) names
its failures with a `FailureKind`, so a misspelt one is an `AttributeError` rather than
a failure that is silently retried for ever. The kind is a `str` whose value is its
name, which is what a record stores as `error_type` on disk: logs written by any
version read back equal to these members (`FailureKind("VideoNotFound")`).

Permanent: the same input fails the same way, so a re-run does not ask again (a sample's
answer key covers its input: a changed video or row is asked anew). Retryable: the cause
may go away without the input changing (a server, the machine, a run that was stopped),
so the next run asks again. (Within one run, the API client retries by its own rule:
`evalcore.api.retry`.) An `error_type` that is no member (an exception class a model
raised, a kind from a newer version) is retryable.
"""

from __future__ import annotations

from enum import StrEnum

PERMANENT = True
RETRYABLE = False


class FailureKind(StrEnum):
    """A failure class; `permanent`: a re-run on the same input would fail the same way."""

    permanent: bool

    def __new__(cls, value: str, permanent: bool) -> FailureKind:
        member = str.__new__(cls, value)
        member._value_ = value
        member.permanent = permanent
        return member

    # -- the video, before any decoder (evalcore.frames.extract, evalcore.frames.index)
    VideoNotFound = "VideoNotFound", PERMANENT
    VideoUnreadable = "VideoUnreadable", PERMANENT
    EmptyVideo = "EmptyVideo", PERMANENT
    InvalidClip = "InvalidClip", PERMANENT  # negative bounds, or start not before end
    InvalidPath = "InvalidPath", PERMANENT  # the row's path escapes the dataset root
    # -- decoding (evalcore.frames.decoders, evalcore.frames.extract)
    EmptyClip = "EmptyClip", PERMANENT  # the clip holds no frame of the video
    # the sampler's peer refuses the clip (qwen-vl-utils: fewer frames than it would take)
    SamplingRefused = "SamplingRefused", PERMANENT
    DecodeError = "DecodeError", PERMANENT
    DecodeTimeout = "DecodeTimeout", RETRYABLE  # the worker was killed on its timeout
    WorkerCrashed = "WorkerCrashed", RETRYABLE
    CacheWriteError = "CacheWriteError", RETRYABLE  # decoded, but could not be stored
    # -- the frame cache and index, as inference reads them
    CorruptFrames = "CorruptFrames", RETRYABLE  # the next run extracts the clip anew
    FramesMissing = "FramesMissing", RETRYABLE  # not extracted, or the entry is gone
    ExtractionStopped = "ExtractionStopped", RETRYABLE  # the extraction ended before the clip
    # -- a model adapter, per request (evalcore.models)
    FramesUnreadable = "FramesUnreadable", RETRYABLE
    InvalidFrames = "InvalidFrames", RETRYABLE  # not uint8 (T, H, W, 3)
    PreprocessingError = "PreprocessingError", RETRYABLE  # chat template or processor
    # -- the runner (evalcore.inference)
    OutOfMemory = "OutOfMemory", RETRYABLE  # a batch of one still did not fit
    BadAnswer = "BadAnswer", RETRYABLE  # `generate` returned neither text nor an error
    PackUnanswered = "PackUnanswered", RETRYABLE  # a packed reply held no answer for it
    # Its cause (the model, the machine) may be fixed without any input changing: final
    # only in the run that gave up on it; the next run asks it again
    # (evalcore.inference.torchrun.attempts).
    RankCrashed = "RankCrashed", RETRYABLE
    # -- an API model: the sample cannot be sent as the endpoint is configured
    UnsupportedClip = "UnsupportedClip", PERMANENT  # media=video_file and a clip
    # -- the API transport (evalcore.api): HTTP statuses, then what else an attempt can
    # end with
    BadRequest = "BadRequest", RETRYABLE
    Unauthorized = "Unauthorized", RETRYABLE
    Forbidden = "Forbidden", RETRYABLE
    NotFound = "NotFound", RETRYABLE
    RequestTimeout = "RequestTimeout", RETRYABLE
    Conflict = "Conflict", RETRYABLE
    PayloadTooLarge = "PayloadTooLarge", RETRYABLE
    Unprocessable = "Unprocessable", RETRYABLE
    RateLimited = "RateLimited", RETRYABLE
    ClientError = "ClientError", RETRYABLE  # any other 4xx
    ServerError = "ServerError", RETRYABLE  # 5xx
    Redirected = "Redirected", RETRYABLE
    Timeout = "Timeout", RETRYABLE
    ConnectionError = "ConnectionError", RETRYABLE
    ResponseTooLarge = "ResponseTooLarge", RETRYABLE
    MalformedResponse = "MalformedResponse", RETRYABLE
    EmptyResponse = "EmptyResponse", RETRYABLE
    MediaError = "MediaError", RETRYABLE  # the video could not be read or sent
    UnusableReply = "UnusableReply", RETRYABLE  # the benchmark could not read the reply
    WorkerError = "WorkerError", RETRYABLE  # a Dask worker died or its task crashed
    Unknown = "Unknown", RETRYABLE  # an outcome that named no failure

    @classmethod
    def of(cls, error_type: str | None) -> FailureKind | None:
        """The member named `error_type`; None for a name that is none (or None)."""
        return cls._value2member_map_.get(error_type) if error_type else None


def is_permanent(error_type: str | None) -> bool:
    """Whether a failure of this type would repeat on the same input (an unknown type:
    no)."""
    kind = FailureKind.of(error_type)
    return kind is not None and kind.permanent

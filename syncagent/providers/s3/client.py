"""boto3 for the S3 provider: the client, the ONE place where a botocore
failure becomes a `syncagent.errors` class, and the one retry loop.

botocore's own retries are off (`total_max_attempts=1`): retries come from
syncagent/retry.py and nowhere else, so one S3 request gets
`Tuning.attempts` tries in all (5 by default), never 5 x botocore's.
Request checksums are sent only where the API requires them (the servers
this talks to differ in what trailing checksums they understand); uploads
carry Content-MD5, which every S3 server checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
import botocore.config
import botocore.exceptions
import botocore.parsers
import botocore.session
import botocore.utils

from syncagent import errors
from syncagent.retry import RetryPolicy

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

T = TypeVar("T")


@dataclass(frozen=True)
class Tuning:
    """Timings and sizes; tests shrink them."""

    attempts: int = 5              # tries per request on transient errors (the first included)
    backoff_base: float = 0.5
    backoff_cap: float = 20.0
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    pool: int = 16
    page_size: int = 1000          # keys per ListObjectsV2 page (S3's maximum)
    head_workers: int = 8          # parallel HEADs for metadata of objects not seen before


DEFAULT_TUNING = Tuning()

_AUTH = {"AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken",
         "TokenRefreshRequired", "AuthorizationHeaderMalformed", "InvalidSecurity", "AllAccessDisabled"}
_NOT_FOUND = {"NoSuchKey", "NotFound", "NoSuchUpload", "404"}
_CONFLICT = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_THROTTLE = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests",
             "RequestThrottled", "429"}
_UNSUPPORTED = {"NotImplemented", "501"}


def make_client(endpoint: str | None, region: str | None, *, access_key_id: str | None = None,
                secret_access_key: str | None = None, session_token: str | None = None,
                profile: str | None = None, path_style: bool | None = None,
                tuning: Tuning = DEFAULT_TUNING) -> S3Client:
    """A client with retries off (ours apply), bounded timeouts and a pool for parallel transfers.
    Without keys, boto3 looks where AWS tools look (environment, ~/.aws profiles, instance roles)."""
    core = botocore.session.get_session()
    core.register_component("response_parser_factory", _parsers())
    session = boto3.session.Session(botocore_session=core, profile_name=profile)
    style = "path" if (path_style if path_style is not None else endpoint is not None) else "virtual"
    config = botocore.config.Config(
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=tuning.connect_timeout, read_timeout=tuning.read_timeout,
        max_pool_connections=tuning.pool, s3={"addressing_style": "path" if style == "path" else "virtual"},
        request_checksum_calculation="when_required", response_checksum_validation="when_required",
        user_agent_extra="syncagent")
    client: S3Client = session.client("s3", endpoint_url=endpoint, region_name=region or session.region_name
                                      or "us-east-1", aws_access_key_id=access_key_id,
                                      aws_secret_access_key=secret_access_key, aws_session_token=session_token,
                                      config=config)
    return client


def parse_timestamp(text: str) -> datetime:
    """A timestamp of an S3 answer. The form listings use for every object's LastModified
    ('2026-12-02T01:42:53.000Z') is read by `datetime.fromisoformat`; anything else goes to
    botocore's own parser (dateutil), which took 40% of a 10,000-object no-op sync."""
    if len(text) >= 20 and text[10] == "T" and text[-1] == "Z":
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    parsed: datetime = botocore.utils.parse_timestamp(text)
    return parsed


def _parsers() -> botocore.parsers.ResponseParserFactory:
    factory = botocore.parsers.ResponseParserFactory()
    factory.set_parser_defaults(timestamp_parser=parse_timestamp)
    return factory


def error_code(exc: botocore.exceptions.ClientError) -> tuple[str, int]:
    err = exc.response.get("Error", {})
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return str(err.get("Code", "") or status), status


def error_for(exc: BaseException, *, path: str | None = None, host: str = "the S3 service",
              bucket: str = "") -> errors.ProviderError:
    """Every failure of an S3 request, mapped onto the error tree."""
    if isinstance(exc, errors.ProviderError):
        return exc
    if isinstance(exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        return errors.AuthError(f"no S3 credentials: {exc}", path=path)
    if isinstance(exc, botocore.exceptions.ClientError):
        return _client_error(exc, path, host, bucket)
    if isinstance(exc, botocore.exceptions.ParamValidationError):
        return errors.PermanentError(f"invalid S3 request: {exc}", path=path)
    if isinstance(exc, botocore.exceptions.SSLError):
        return errors.PermanentError(f"TLS failure talking to {host}", path=path)
    if isinstance(exc, botocore.exceptions.BotoCoreError | OSError):
        return errors.TransientError(f"network failure talking to {host}: {type(exc).__name__}", path=path)
    return errors.PermanentError(f"{type(exc).__name__} talking to {host}", path=path)


def _client_error(exc: botocore.exceptions.ClientError, path: str | None, host: str,
                  bucket: str) -> errors.ProviderError:
    code, status = error_code(exc)
    message = f"{host} answered {status} {code}".strip()
    if code in _AUTH or status in (401, 403):
        return errors.AuthError(f"{host} refused the access key or secret ({code})", path=path)
    if code == "NoSuchBucket":
        return errors.NotFound(f"the bucket {bucket!r} does not exist on {host}", path=path)
    if code in _NOT_FOUND or status == 404:
        return errors.NotFound(message, path=path)
    if code in _CONFLICT or status in (409, 412):
        return errors.Conflict(message, path=path)
    if code in _THROTTLE or status in (429, 503):
        return errors.Throttled(message, path=path)
    if code in _UNSUPPORTED or status == 501:
        return errors.Unsupported(message, path=path)
    if code in ("EntityTooLarge", "QuotaExceeded") or status == 507:
        return errors.QuotaExceeded(message, path=path)
    if status >= 500 or code in ("InternalError", "RequestTimeout", "RequestTimeTooSkewed"):
        return errors.TransientError(message, path=path)
    return errors.PermanentError(message, path=path)


class Calls:
    """Runs client calls under the one retry policy, mapping their failures."""

    def __init__(self, host: str, bucket: str, tuning: Tuning,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.host, self.bucket, self.tuning, self.sleep = host, bucket, tuning, sleep
        self.policy = RetryPolicy(attempts=tuning.attempts, backoff_base=tuning.backoff_base,
                                  backoff_cap=tuning.backoff_cap)
        self.once = RetryPolicy(attempts=1)

    def __call__(self, fn: Callable[[], T], *, path: str | None = None, retry: bool = True,
                 before: Callable[[], Any] | None = None) -> T:
        """`fn()` with retries (`before()` runs ahead of each try: rewinding a body)."""

        def once() -> T:
            if before is not None:
                before()
            try:
                return fn()
            except Exception as exc:
                raise error_for(exc, path=path, host=self.host, bucket=self.bucket) from exc

        return (self.policy if retry else self.once).call(once, f"S3 {path or ''}".strip(), sleep=self.sleep)

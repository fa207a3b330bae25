"""S3-compatible object storage (AWS S3, MinIO, Ceph RGW, Garage, SeaweedFS,
`rclone serve s3`) over boto3.

    client.py     the boto3 client (its own retries off), the one error mapping, the retry loop
    provider.py   the Provider: listing, reads with resume, writes, folders as prefixes, moves
    multipart.py  multipart uploads resumable after a restart (upload id and parts in provider state)
    login.py      `syncagent auth`: access key and secret; opening a configured remote

This file only declares the type (the registry imports it at start-up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from syncagent.providers.registry import LoginContext, ProviderType, RemoteSettings

if TYPE_CHECKING:
    from syncagent.providers.base import Provider


class S3Options(BaseModel):
    """`type: s3`: a bucket (and a key prefix in it) on an S3-compatible service."""

    model_config = ConfigDict(extra="forbid")

    bucket: str = Field(min_length=3, description="the bucket")
    endpoint: str | None = Field(None, description="the service URL, e.g. http://minio:9000 (none: AWS)")
    region: str | None = Field(None, description="the region (AWS's own configuration when not given)")
    prefix: str = Field("", description="the key prefix this remote starts at (a folder in the bucket)")
    access_key_id: str | None = Field(None, description="access key id (none: AWS's environment and profiles)")
    secret_access_key: str | None = Field(None, description="secret access key")
    session_token: str | None = Field(None, description="session token of temporary credentials")
    profile: str | None = Field(None, description="a profile of ~/.aws/credentials and ~/.aws/config")
    path_style: bool | None = Field(None, description="path-style addressing (default: on with an endpoint)")
    multipart_threshold: int = Field(16 << 20, ge=5 << 20, description="bytes from which uploads go in parts")
    part_size: int = Field(16 << 20, ge=5 << 20, le=5 << 30, description="bytes per part of a multipart upload")
    conditional_writes: Literal["auto", "server", "check"] = Field(
        "auto", description="If-None-Match/If-Match: auto learns once whether the server enforces them "
                            "(then trusts it, else checks first); server trusts the server; check always "
                            "checks first and sends none")
    folder_markers: Literal["slash", "file"] = Field(
        "slash", description="how an empty folder is kept: an object `folder/` (S3 consoles, rclone), or "
                             "`folder/.syncagent-folder` (servers on a filesystem: rclone serve s3)")
    transfers: int = Field(4, ge=1, le=32, description="parallel transfers")
    upload_concurrency: int = Field(4, ge=1, le=16, description="parts of one multipart upload in flight "
                                                                "(memory: about this many parts + 1 per upload)")


def _open(settings: RemoteSettings) -> Provider:
    from syncagent.providers.s3.login import open_provider

    return open_provider(settings)


def _login(ctx: LoginContext) -> dict[str, str]:
    from syncagent.providers.s3.login import login

    return login(ctx)


PROVIDER = ProviderType(
    name="s3",
    summary="S3-compatible object storage (AWS, MinIO, Ceph RGW, Garage, SeaweedFS)",
    options=S3Options,
    secrets=("access_key_id", "secret_access_key", "session_token"),
    env={"access_key_id": "AWS_ACCESS_KEY_ID", "secret_access_key": "AWS_SECRET_ACCESS_KEY",
         "session_token": "AWS_SESSION_TOKEN", "profile": "AWS_PROFILE",
         "region": ("AWS_REGION", "AWS_DEFAULT_REGION"), "endpoint": "AWS_ENDPOINT_URL_S3"},
    open=_open,
    login=_login,
    emulator="s3",
)

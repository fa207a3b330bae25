"""S3's side of `syncagent auth` and of opening a configured remote.

An access key id and secret (stored as secrets), or nothing at all: then
boto3 finds credentials where AWS tools do (AWS_* variables, the `profile`
in ~/.aws/credentials and ~/.aws/config, an instance role). The registry
verifies a login by opening the provider, whose first request is a signed
ListObjectsV2 on the bucket: a wrong secret fails there, before it is kept.
"""

from __future__ import annotations

from dataclasses import replace

from syncagent.providers.registry import LoginContext, RemoteSettings
from syncagent.providers.s3.client import DEFAULT_TUNING, Tuning, make_client
from syncagent.providers.s3.provider import S3Provider, Settings, host_of


def pooled(tuning: Tuning, options: Settings) -> Tuning:
    """A connection pool as big as the requests that can be in flight at once: every part of
    every transfer (or the listing's parallel HEADs), so no request waits for or churns a connection."""
    busiest = max(options.transfers * options.upload_concurrency, tuning.head_workers) + 2
    return replace(tuning, pool=max(tuning.pool, busiest))


def open_provider(settings: RemoteSettings) -> S3Provider:
    o = settings.options
    if bool(o.get("access_key_id")) != bool(o.get("secret_access_key")):
        raise settings.missing(*[f for f in ("access_key_id", "secret_access_key") if not o.get(f)])
    endpoint = o.get("endpoint")
    prefix = "/".join(p for p in (str(o.get("prefix") or ""), settings.subpath) if p.strip("/"))
    options = Settings(str(o["bucket"]), prefix, int(o["multipart_threshold"]), int(o["part_size"]),
                       str(o["conditional_writes"]), int(o["transfers"]), str(o["folder_markers"]),
                       int(o["upload_concurrency"]))
    tuning = pooled(DEFAULT_TUNING, options)
    client = make_client(endpoint, o.get("region"), access_key_id=o.get("access_key_id"),
                         secret_access_key=o.get("secret_access_key"), session_token=o.get("session_token"),
                         profile=o.get("profile"), path_style=o.get("path_style"), tuning=tuning)
    provider = S3Provider(client, options, host=host_of(endpoint), tuning=tuning)
    try:
        provider.connect()
    except BaseException:
        provider.close()
        raise
    return provider


def login(ctx: LoginContext) -> dict[str, str]:
    """The access key id and the secret access key (asked for, the secret hidden)."""
    key = ctx.value("access_key_id", "Access key id")
    secret = str(ctx.given.get("secret_access_key") or "") or ctx.prompt("Secret access key", secret=True)
    out = {"access_key_id": key, "secret_access_key": secret}
    token = ctx.given.get("session_token")
    if token:
        out["session_token"] = str(token)
    return out

"""The Bridge API of spec §4, one method per route: accounts, keys, buckets,
tokens, files. Uploads stream a multipart body of known length; downloads
go through the pointers this returns (datachannel.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from syncagent import errors
from syncagent.providers.metadisk.content import ContentHasher
from syncagent.providers.metadisk.transport import Api

PUSH, PULL = "PUSH", "PULL"


@dataclass(frozen=True)
class FileEntry:
    """One entry of a bucket listing (spec §4.7): no time, no id; the hash is the content address."""

    hash: str
    size: int
    filename: str
    mimetype: str

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> FileEntry:
        return cls(str(obj["hash"]), int(obj.get("size") or 0), str(obj.get("filename") or obj["hash"]),
                   str(obj.get("mimetype") or "application/octet-stream"))


@dataclass(frozen=True)
class Pointer:
    """Where one shard is fetched (spec §4.8): its hash, a farmer token, the data channel."""

    hash: str
    token: str
    operation: str
    channel: str

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Pointer:
        return cls(str(obj["hash"]), str(obj["token"]), str(obj.get("operation") or PULL), str(obj["channel"]))


class Bridge:
    def __init__(self, api: Api) -> None:
        self.api = api

    # ---- accounts (spec §4.1-4.3) ------------------------------------------------------
    def register(self, email: str, password_sha256: str, pubkey: str | None = None) -> dict[str, Any]:
        body = {"email": email, "password": password_sha256, **({"pubkey": pubkey} if pubkey else {})}
        return dict(self.api.anonymous("POST", "/users", body, safe=False))

    def activate(self, token: str) -> dict[str, Any]:
        return dict(self.api.anonymous("GET", f"/activations/{token.strip()}"))

    def keys(self, *, basic: bool = False) -> list[dict[str, Any]]:
        return list(self.api.auth("GET", "/keys", basic=basic))

    def add_key(self, public_hex: str, *, basic: bool = False) -> dict[str, Any]:
        return dict(self.api.auth("POST", "/keys", {"key": public_hex}, basic=basic))

    def remove_key(self, public_hex: str, *, basic: bool = False) -> None:
        self.api.auth("DELETE", f"/keys/{public_hex}", basic=basic)

    # ---- buckets (spec §4.4) -------------------------------------------------------------
    def buckets(self) -> list[dict[str, Any]]:
        return list(self.api.auth("GET", "/buckets"))

    def bucket(self, bucket_id: str) -> dict[str, Any]:
        return dict(self.api.auth("GET", f"/buckets/{bucket_id}"))

    def create_bucket(self, name: str, storage: int | None = None, transfer: int | None = None,
                      pubkeys: list[str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name}
        body.update({k: v for k, v in (("storage", storage), ("transfer", transfer), ("pubkeys", pubkeys))
                     if v is not None})
        return dict(self.api.auth("POST", "/buckets", body, safe=False))

    def update_bucket(self, bucket_id: str, **changes: Any) -> dict[str, Any]:
        allowed = {k: v for k, v in changes.items() if k in ("name", "storage", "transfer", "pubkeys")}
        return dict(self.api.auth("PATCH", f"/buckets/{bucket_id}", allowed))

    def delete_bucket(self, bucket_id: str) -> None:
        self.api.auth("DELETE", f"/buckets/{bucket_id}")

    # ---- tokens and files (spec §4.5-4.9) ------------------------------------------------
    def token(self, bucket_id: str, operation: str) -> str:
        found = self.api.auth("POST", f"/buckets/{bucket_id}/tokens", {"operation": operation})
        return str(found["token"])

    def files(self, bucket_id: str) -> list[FileEntry]:
        return [FileEntry.from_json(o) for o in self.api.auth("GET", f"/buckets/{bucket_id}/files")]

    def delete_file(self, bucket_id: str, file_hash: str) -> None:
        self.api.auth("DELETE", f"/buckets/{bucket_id}/files/{file_hash}")

    def pointers(self, bucket_id: str, file_hash: str, *, error_path: str | None = None) -> list[Pointer]:
        response = self.api.with_token("GET", f"/buckets/{bucket_id}/files/{file_hash}",
                                       lambda: self.token(bucket_id, PULL), error_path=error_path)
        return [Pointer.from_json(o) for o in response.json()]

    def upload(self, bucket_id: str, stream: IO[bytes], size: int, filename: str, *,
               mimetype: str = "application/octet-stream", error_path: str | None = None) -> FileEntry:
        """PUT the file as the first multipart part; the content address is computed
        from the bytes as they leave and must be the one the service answers with.
        A retry rewinds the stream (only possible when it is seekable)."""
        start = stream.tell() if stream.seekable() else None
        sent: list[MultipartBody] = []

        def body() -> dict[str, Any]:
            if sent:
                if start is None:
                    raise errors.TransientError("the upload broke and its source cannot be re-read",
                                                path=error_path)
                stream.seek(start)
            part = MultipartBody(stream, size, filename, mimetype)
            sent.append(part)
            return {"data": part, "headers": {"x-filesize": str(size), "Content-Type": part.content_type,
                                              "Content-Length": str(len(part))}}

        response = self.api.with_token("PUT", f"/buckets/{bucket_id}/files", lambda: self.token(bucket_id, PUSH),
                                       body=body, error_path=error_path)
        entry = FileEntry.from_json(response.json())
        part = sent[-1]
        if part.sent != size:
            raise errors.TransientError(f"the source gave {part.sent} bytes, {size} were declared", path=error_path)
        if entry.hash != part.hasher.hexdigest() or entry.size != size:
            raise errors.TransientError(f"Metadisk stored {entry.hash} ({entry.size} bytes) for content "
                                        f"{part.hasher.hexdigest()} ({size} bytes)", path=error_path)
        return entry


class MultipartBody:
    """A streamed multipart/form-data body of known length with one file part,
    hashing the file's bytes as they are read (requests sends it with read())."""

    def __init__(self, stream: IO[bytes], size: int, filename: str, mimetype: str,
                 read_hook: Callable[[bytes], None] | None = None) -> None:
        self.boundary = uuid.uuid4().hex
        safe_name = filename.replace('"', "%22").replace("\r", " ").replace("\n", " ")
        self.head = (f"--{self.boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                     f"filename=\"{safe_name}\"\r\nContent-Type: {mimetype}\r\n\r\n").encode()
        self.tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.stream, self.size = stream, size
        self.hasher = ContentHasher()
        self.sent = 0
        self._stage = 0    # 0 head, 1 file, 2 tail, 3 done

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def read(self, n: int = -1) -> bytes:
        if self._stage == 0:
            self._stage = 1
            return self.head
        if self._stage == 1:
            want = self.size - self.sent
            chunk = self.stream.read(min(want, max(n, 1 << 16) if n > 0 else want)) if want > 0 else b""
            if chunk:
                self.sent += len(chunk)
                self.hasher.update(chunk)
                return chunk
            if want > 0:  # the file got shorter while it was sent: the body would not match its length
                raise errors.Conflict(f"the source ended after {self.sent} of {self.size} bytes")
            self._stage = 2
        if self._stage == 2:
            self._stage = 3
            return self.tail
        return b""

"""File bytes (spec §4.10, §4.11): chunked encrypted uploads that resume,
and downloads that decrypt as they stream and check the meta-MAC before
the last bytes are handed out, so a file that fails its check is never
placed (the reader raises instead of ending).
"""

from __future__ import annotations

import hashlib
import io
import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Any

import requests
import urllib3

from syncagent import errors
from syncagent.http import StallCheck
from syncagent.log import get_logger
from syncagent.providers.mega.api import Api, TransferQuota, code_of, error_for, http_error
from syncagent.providers.mega.codec import BadEncoding, b64dec, b64enc
from syncagent.providers.mega.filecrypt import ChunkCoder, FileKey, chunks, meta_mac
from syncagent.providers.mega.fingerprint import CrcSampler, Fingerprint, mtime_seconds
from syncagent.providers.mega.keys import decrypt_attrs, encrypt_attrs

IN_FLIGHT = 3      # chunks being encrypted and sent at once
PREFETCH = 2       # ciphertext chunks a download reads ahead while one is decrypted


class ShortRead(errors.TransientError):
    """The source ended before its declared size: the file is being written."""


# ---- uploads ---------------------------------------------------------------------------
@dataclass
class UploadRecord:
    """An upload in progress, as kept in provider state (sealed under the master key):
    the upload URL, the file key, and the MACs of the chunks already sent."""

    url: str
    size: int
    mtime_ns: int
    key: FileKey
    macs: list[bytes] = field(default_factory=list)
    done: int = 0                  # bytes sent (always a chunk boundary)
    token: str | None = None       # the completion token, once the last chunk went

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "size": self.size, "mtime_ns": self.mtime_ns, "k": b64enc(self.key.key),
                "n": b64enc(self.key.nonce), "macs": [b64enc(m) for m in self.macs], "done": self.done,
                "token": self.token}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UploadRecord:
        return cls(str(data["url"]), int(data["size"]), int(data["mtime_ns"]),
                   FileKey(b64dec(data["k"]), b64dec(data["n"])), [b64dec(m) for m in data["macs"]],
                   int(data["done"]), data.get("token"))


def seal(master_key: bytes, record: UploadRecord) -> str:
    return encrypt_attrs(record.to_json(), master_key)


def unseal(master_key: bytes, text: str | None) -> UploadRecord | None:
    if not text:
        return None
    data = decrypt_attrs(text, master_key)
    try:
        return UploadRecord.from_json(data) if data is not None else None
    except (KeyError, ValueError, TypeError, BadEncoding):
        return None


@dataclass(frozen=True)
class Uploaded:
    token: str
    key: FileKey                   # with its meta-MAC
    fingerprint: Fingerprint
    sha256: str                    # of the plaintext


class Uploader:
    """Sends one file: `u` for the URL, then each chunk encrypted, as the spec's
    chunk table cuts it. `save(record)` is called after every chunk."""

    def __init__(self, api: Api, save: Callable[[UploadRecord | None], None]) -> None:
        self.api = api
        self.save = save
        self.log = get_logger(provider="mega")

    def upload(self, stream: IO[bytes], size: int, mtime_ns: int, resume: UploadRecord | None) -> Uploaded:
        record = self._resumable(resume, stream, size, mtime_ns)
        sampler = Sampler(size)
        if record is None:
            answer = self.api.call({"a": "u", "s": size, "ssl": 0})
            if not isinstance(answer, dict) or not isinstance(answer.get("p"), str):
                raise errors.PermanentError("MEGA gave no upload URL")
            record = UploadRecord(answer["p"], size, mtime_ns, FileKey.random())
        else:
            self.log.info("mega upload resumed", sent=record.done, size=size)
            _sample_prefix(sampler, stream, record.done)
            stream.seek(record.done)
        self._send(stream, sampler, record)
        if size == 0:
            record.token = self._post(record.url, 0, b"")
        if stream.read(1):
            raise ShortRead("the file grew while it was uploaded")
        if not record.token:
            raise errors.TransientError("MEGA took every chunk but sent no completion token")
        key = record.key.with_mac(meta_mac(record.key.key, record.macs))
        return Uploaded(record.token, key, Fingerprint(sampler.digest(), mtime_seconds(mtime_ns)),
                        sampler.sha256.hexdigest())

    def _send(self, stream: IO[bytes], sampler: CrcSampler, record: UploadRecord) -> None:
        """Every chunk from `record.done` on. This thread reads the file in order (the
        hashes need it); IN_FLIGHT workers encrypt, MAC and POST chunks at once (chunks
        are independent, and AES runs without the GIL); the record advances in file order."""
        coder = ChunkCoder(record.key)
        in_flight: deque[tuple[int, int, Future[tuple[bytes, str | None]]]] = deque()

        def send(offset: int, plain: bytes) -> tuple[bytes, str | None]:
            cipher, mac = coder.encrypt(offset, plain)
            return mac, self._post(record.url, offset, cipher)

        def settle() -> None:
            offset, length, sent = in_flight.popleft()
            mac, token = sent.result()
            record.token = token or record.token
            record.macs.append(mac)
            record.done = offset + length
            self.save(record)

        with ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="mega-upload") as pool:
            try:
                for offset, length in chunks(record.size):
                    if offset < record.done:
                        continue
                    plain = _read_exactly(stream, length)
                    sampler.update(plain)
                    in_flight.append((offset, length, pool.submit(send, offset, plain)))
                    if len(in_flight) >= IN_FLIGHT:
                        settle()
                while in_flight:
                    settle()
            finally:
                for *_, sent in in_flight:
                    sent.cancel()

    def _resumable(self, record: UploadRecord | None, stream: IO[bytes], size: int,
                   mtime_ns: int) -> UploadRecord | None:
        if record is None or record.size != size or record.mtime_ns != mtime_ns or not record.done:
            return None
        try:
            if not stream.seekable():
                return None
        except (AttributeError, OSError):
            return None
        return record

    def _post(self, url: str, offset: int, data: bytes) -> str | None:
        """One chunk, under the retry policy (a repeated chunk is harmless: the server
        keeps one copy); the completion token if this was the last one."""
        attempts = self.api.tuning.retry.start("mega upload chunk", sleep=self.api.sleep)
        while True:
            try:
                return self._post_once(url, offset, data)
            except errors.ProviderError as err:
                attempts.failed(err)

    def _post_once(self, url: str, offset: int, data: bytes) -> str | None:
        target = f"{url}/{offset}"
        try:
            response = self.api.http.post(target, data=data)
            body = response.content
        except requests.RequestException as exc:
            raise http_error(exc=exc, what="upload", url=target) from exc
        if response.status_code != 200:
            raise http_error(response, what="upload")
        code = _chunk_code(body)
        if code is None:
            return _token(body)
        err = error_for(code, what="upload")
        if code in (-8, -9):   # the URL is gone: not worth a retry here; the next run starts over
            raise errors.PermanentError(f"{err}; the upload starts over next time")
        raise err


def _chunk_code(body: bytes) -> int | None:
    text = body.strip()
    if text.startswith(b"-") and text[1:].isdigit() and len(text) < 8:
        return code_of(int(text))
    return None


def _token(body: bytes) -> str | None:
    """Empty: chunk taken. Base64 text or 36 raw bytes: the completion token."""
    if not body:
        return None
    try:
        text = body.decode("ascii").strip()
        if text and all(c.isalnum() or c in "-_" for c in text):
            return text
    except UnicodeDecodeError:
        pass
    return b64enc(body)


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    parts: list[bytes] = []
    left = size
    while left:
        data = stream.read(left)
        if not data:
            raise ShortRead("the file shrank while it was uploaded")
        parts.append(data)
        left -= len(data)
    return parts[0] if len(parts) == 1 else b"".join(parts)


class Sampler(CrcSampler):
    """The fingerprint's samples and the full sha256, in the same pass."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.sha256 = hashlib.sha256()

    def update(self, data: bytes | bytearray | memoryview) -> None:
        super().update(data)
        self.sha256.update(data)


def _sample_prefix(sampler: CrcSampler, stream: IO[bytes], upto: int) -> None:
    """Feed the fingerprint the part already sent (resuming): read through it once."""
    stream.seek(0)
    left = upto
    while left:
        data = stream.read(min(left, 1 << 20))
        if not data:
            raise ShortRead("the file shrank while it was uploaded")
        sampler.update(data)
        left -= len(data)


# ---- downloads -------------------------------------------------------------------------
class DownloadStream(io.RawIOBase):
    """Plaintext of a MEGA file, chunk by chunk. A broken connection resumes at the
    chunk it was in; HTTP 509 (transfer quota) waits as the server says, and says so.
    A reader thread fetches up to PREFETCH chunks ahead while one is decrypted."""

    def __init__(self, api: Api, url: str, size: int, key: FileKey, what: str = "") -> None:
        super().__init__()
        self.api, self.url, self.size, self.key, self.what = api, url, size, key, what
        self._coder = ChunkCoder(key)
        self._chunks = list(chunks(size))
        self._next = 0
        self._macs: list[bytes] = []
        self._buffer = memoryview(b"")
        self._response: requests.Response | None = None
        self._at = 0                     # ciphertext offset the open response is at
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(PREFETCH)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.log = get_logger(provider="mega")
        if not self._chunks:
            self._verify()

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buffer:
            if self._next >= len(self._chunks):
                return 0
            self._load_chunk()
        n = min(len(b), len(self._buffer))
        b[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def _load_chunk(self) -> None:
        offset, _ = self._chunks[self._next]
        if self._thread is None:
            self._thread = threading.Thread(target=self._reader, name="mega-download", daemon=True)
            self._thread.start()
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        plain, mac = self._coder.decrypt(offset, item)
        self._macs.append(mac)
        self._next += 1
        if self._next == len(self._chunks):
            self._verify()   # before the last bytes leave: a bad file is never completed
        self._buffer = memoryview(plain)

    def _verify(self) -> None:
        got = meta_mac(self.key.key, self._macs)
        if got != self.key.meta_mac:
            self.close()
            raise errors.PermanentError("MEGA file failed its integrity check (meta-MAC mismatch): "
                                        "corrupt or tampered; nothing was written", path=self.what or None)

    def _reader(self) -> None:
        try:
            for offset, length in self._chunks:
                if self._stop.is_set():
                    return
                self._hand_over(self._fetch(offset, length))
        except BaseException as exc:   # the reading thread raises it
            self._hand_over(exc)
        finally:
            self._drop()

    def _hand_over(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def _fetch(self, offset: int, length: int) -> bytes:
        """One chunk's ciphertext, under the retry policy (a budget per chunk: a long
        download that breaks late still resumes). HTTP 509 waits outside that budget,
        as long as the server says, at most `quota_waits` times per chunk."""
        attempts = self.api.tuning.retry.start("mega download", sleep=self.api.sleep)
        waits = 0
        while True:
            try:
                if self._response is None or self._at != offset:
                    self._open(offset)
                data = self._read(length)
                self._at = offset + length
                return data
            except TransferQuota as exc:
                self._drop()
                waits += 1
                if waits > self.api.tuning.quota_waits:
                    raise
                wait = min(exc.retry_after if exc.retry_after is not None else self.api.tuning.quota_wait,
                           self.api.tuning.quota_wait_cap)
                self.log.warning("MEGA transfer quota exceeded (HTTP 509); waiting", seconds=wait, path=self.what)
                self.api.sleep(wait)
            except errors.ProviderError as exc:
                self._drop()
                attempts.failed(exc)

    def _open(self, offset: int) -> None:
        self._drop()
        url = self.url if offset == 0 else f"{self.url}/{offset}-{self.size - 1}"
        try:
            response = self.api.http.get(url, stream=True)
        except requests.RequestException as exc:
            raise http_error(exc=exc, what="download", url=url) from exc
        if response.status_code != 200:
            response.close()
            raise http_error(response, what="download")
        self._response, self._at = response, offset
        self._stall = StallCheck(self.api.tuning.timeouts, url, path=self.what or None)

    def _read(self, length: int) -> bytes:
        assert self._response is not None
        parts: list[bytes] = []
        left = length
        try:
            while left:
                data = self._response.raw.read(min(left, 1 << 20))
                if not data:
                    raise errors.TransientError("the MEGA download ended early")
                self._stall.progress(len(data))
                parts.append(data)
                left -= len(data)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
            raise http_error(exc=exc, what="download", url=self.url) from exc   # a reset mid-body, a timeout
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _drop(self) -> None:
        if self._response is not None:
            self._response.close()
            self._response = None

    def close(self) -> None:
        self._stop.set()
        self._drop()   # a read blocked in the reader thread ends with the connection
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5)
        super().close()


def download_url(api: Api, command: dict[str, Any], path: str | None = None) -> tuple[str, int, str]:
    """(URL, size, encrypted attributes) from `g`."""
    answer = api.call({**command, "g": 1, "ssl": 0}, path=path)
    if not isinstance(answer, dict):
        raise errors.PermanentError("MEGA sent a malformed download answer", path=path)
    code = code_of(answer.get("e"))
    if code is not None:
        raise error_for(code, path=path, what="download")
    url, size = answer.get("g"), answer.get("s")
    if isinstance(url, list) and url:
        url = url[0]
    if not isinstance(url, str) or not isinstance(size, int):
        raise errors.PermanentError("MEGA did not give this file out (no download URL)", path=path)
    return url, size, str(answer.get("at") or "")


def open_download(api: Api, command: dict[str, Any], key: FileKey, path: str | None = None) -> IO[bytes]:
    url, size, _ = download_url(api, command, path)
    return io.BufferedReader(DownloadStream(api, url, size, key, path or ""), 1 << 20)

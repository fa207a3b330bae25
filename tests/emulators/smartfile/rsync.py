"""The sync API (spec §4.12, §7): signature / delta / patch of remote files in
librsync 0.9.7 formats (MD4 strong sums, rollsum weak sums), computed with
the project's own `syncagent.delta` (imported when first used, so the rest of
the emulator works before it exists)."""

from __future__ import annotations

import importlib
import os
import struct
import tempfile
from typing import IO, Any

from tests.emulators.base import Request, Response
from tests.emulators.forms import Form, Part
from tests.emulators.smartfile.store import ApiError, Store, detail

MD4_SIG_MAGIC = 0x72730136
DELTA_MAGIC = 0x72730236
DEFAULT_BLOCK = 2048
STRONG_LEN = 8
MAX_BLOCK = 1 << 20


def _delta_module() -> Any:
    try:
        return importlib.import_module("syncagent.delta")
    except ImportError as exc:
        raise detail(501, f"sync API unavailable: {exc}") from exc


def _check_magic(stream: IO[bytes], magic: int, what: str) -> None:
    head = stream.read(4)
    stream.seek(0)
    if len(head) < 4 or struct.unpack(">I", head)[0] != magic:
        # librsync >= 1.0 BLAKE2 (0x72730137) and rabinkarp signatures land here too
        raise detail(400, f"Not a librsync 0.9.7 {what}")


def _part(form: Form, name: str) -> Part:
    for part in form.files:
        if part.name == name:
            return part
    if form.files:
        return form.files[0]  # fallback: the first file part, whatever its name
    raise detail(400, f"No {name} was uploaded")


def _answer_file(path: str) -> Response:
    f = open(path, "rb")  # noqa: SIM115 (closed after the answer is sent)
    size = os.fstat(f.fileno()).st_size
    os.unlink(path)  # the open handle keeps the bytes until the answer is sent
    return Response(200, f, {"Content-Type": "application/octet-stream"}, size, f.close)


def signature(store: Store, parts: list[str], req: Request) -> Response:
    node = store.get(parts)
    if node.isdir:
        raise detail(415, "Unsupported media - You may have mixed up file/folder")
    try:
        block = int(req.arg("block_size") or DEFAULT_BLOCK)
    except ValueError as exc:
        raise detail(400, "block_size must be an integer") from exc
    if not 1 <= block <= MAX_BLOCK:
        raise detail(400, "block_size out of range")
    delta = _delta_module()
    fd, out_path = tempfile.mkstemp(dir=store.blob_dir, prefix="sig-")
    with store.open_blob(node) as basis, os.fdopen(fd, "wb") as out:
        delta.signature(basis, out, hash="md4", block_len=block, strong_len=STRONG_LEN)
    response = _answer_file(out_path)
    response.headers["Content-Type"] = "application/librsync-signature"
    return response


def make_delta(store: Store, parts: list[str], form: Form) -> Response:
    node = store.get(parts)
    if node.isdir:
        raise detail(415, "Unsupported media - You may have mixed up file/folder")
    sig = _part(form, "signature").data
    _check_magic(sig, MD4_SIG_MAGIC, "MD4 signature")
    delta = _delta_module()
    fd, out_path = tempfile.mkstemp(dir=store.blob_dir, prefix="delta-")
    with store.open_blob(node) as new, os.fdopen(fd, "wb") as out:
        try:
            delta.delta(sig, new, out)
        except Exception as exc:  # whatever the library raises on a malformed signature
            os.unlink(out_path)
            raise detail(400, f"Malformed signature: {exc}") from exc
    response = _answer_file(out_path)
    response.headers["Content-Type"] = "application/librsync-delta"
    return response


def apply_patch(store: Store, parts: list[str], form: Form) -> None:
    """Patch against the *current* remote file, then swap the result in atomically."""
    node = store.get(parts)
    if node.isdir:
        raise detail(415, "Unsupported media - You may have mixed up file/folder")
    stream = _part(form, "delta").data
    _check_magic(stream, DELTA_MAGIC, "delta")
    delta = _delta_module()
    blob = store.new_blob()
    with store.lock:  # the basis must not change under the patch
        try:
            with store.open_blob(node) as basis, open(blob, "wb") as out:
                delta.patch(basis, stream, out)
                size = out.tell()
        except ApiError:
            raise
        except Exception as exc:
            blob.unlink(missing_ok=True)
            raise detail(400, f"Malformed delta: {exc}") from exc
        store.replace_content(node, blob, size)

"""librsync signature / delta / patch, streaming, at C speed.

A small ctypes binding of our own to the system librsync (2.x), not the
PyPI python-librsync 0.1-5, which is broken on librsync >= 1.0 (see
docs/delta.md). The hot loops run in librsync's whole-file functions
(rs_sig_file, rs_delta_file, rs_patch_file) over C stdio streams opened on
real file descriptors, with 1 MiB buffers: no per-block Python, constant
memory (a delta holds the signature's hash table, nothing else).

    signature(basis, out, *, hash="blake2"|"md4", block_len=None, strong_len=None)
    delta(sig, new, out)
    patch(basis, delta, out)

Streams that are not real files (BytesIO, sockets) are spooled through a
temporary file.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from typing import IO, Any, Literal

from syncagent.errors import SyncAgentError

HashName = Literal["blake2", "md4"]

# librsync.h: rs_magic_number. "md4" is the librsync 0.9.7 format (MD4 strong
# sums, the original rollsum) that the SmartFile sync API speaks; "blake2" is
# librsync 2.x's default (BLAKE2 strong sums, RabinKarp rollsum) as rdiff writes it.
MAGIC = {"md4": 0x72730136, "blake2": 0x72730147}
RS_DONE = 0
BUFFER = 1 << 20


class DeltaUnavailable(SyncAgentError):
    """librsync cannot be loaded."""


class DeltaError(SyncAgentError):
    """librsync refused its input (corrupt signature or delta, I/O error)."""


_lib: Any = None
_libc: Any = None
_load_lock = threading.Lock()
_load_error: str | None = None


def _load() -> tuple[Any, Any]:
    global _lib, _libc, _load_error
    with _load_lock:
        if _lib is not None:
            return _lib, _libc
        if _load_error is not None:
            raise DeltaUnavailable(_load_error)
        name = ctypes.util.find_library("rsync") or "librsync.so.2"
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            _load_error = ("librsync is not installed: delta transfers need it "
                           "(Debian/Ubuntu: apt-get install librsync2)")
            raise DeltaUnavailable(_load_error) from None
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        _declare(lib, libc)
        # Large buffers: fewer trips through the job loop for big files.
        ctypes.c_size_t.in_dll(lib, "rs_inbuflen").value = BUFFER
        ctypes.c_size_t.in_dll(lib, "rs_outbuflen").value = BUFFER
        _lib, _libc = lib, libc
        return lib, libc


def _declare(lib: Any, libc: Any) -> None:
    vp, sz = ctypes.c_void_p, ctypes.c_size_t
    libc.fdopen.restype, libc.fdopen.argtypes = vp, [ctypes.c_int, ctypes.c_char_p]
    libc.fclose.restype, libc.fclose.argtypes = ctypes.c_int, [vp]
    libc.fflush.restype, libc.fflush.argtypes = ctypes.c_int, [vp]
    lib.rs_sig_file.restype = ctypes.c_int
    lib.rs_sig_file.argtypes = [vp, vp, sz, sz, ctypes.c_int, vp]
    lib.rs_loadsig_file.restype = ctypes.c_int
    lib.rs_loadsig_file.argtypes = [vp, ctypes.POINTER(vp), vp]
    lib.rs_build_hash_table.restype, lib.rs_build_hash_table.argtypes = ctypes.c_int, [vp]
    lib.rs_delta_file.restype, lib.rs_delta_file.argtypes = ctypes.c_int, [vp, vp, vp, vp]
    lib.rs_patch_file.restype, lib.rs_patch_file.argtypes = ctypes.c_int, [vp, vp, vp, vp]
    lib.rs_free_sumset.restype, lib.rs_free_sumset.argtypes = None, [vp]
    lib.rs_strerror.restype, lib.rs_strerror.argtypes = ctypes.c_char_p, [ctypes.c_int]
    if hasattr(lib, "rs_sig_args"):
        lib.rs_sig_args.restype = ctypes.c_int
        lib.rs_sig_args.argtypes = [ctypes.c_longlong, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(sz),
                                    ctypes.POINTER(sz)]


def available() -> bool:
    try:
        _load()
    except DeltaUnavailable:
        return False
    return True


def default_params(file_size: int, hash: HashName = "blake2") -> tuple[int, int]:
    """(block_len, strong_len) for a basis of `file_size` bytes, as librsync's
    rs_sig_args recommends: block ~ sqrt(size) rounded to 128 bytes, and the
    shortest strong sum that keeps false matches improbable (not the 32-byte
    maximum rdiff uses by default, which makes signatures 3x larger)."""
    lib, _ = _load()
    magic = ctypes.c_int(MAGIC[hash])
    block, strong = ctypes.c_size_t(0), ctypes.c_size_t(ctypes.c_size_t(-1).value)
    _check(lib, lib.rs_sig_args(file_size, ctypes.byref(magic), ctypes.byref(block), ctypes.byref(strong)),
           "choosing signature parameters")
    return int(block.value), int(strong.value)


def _check(lib: Any, result: int, what: str) -> None:
    if result != RS_DONE:
        reason = lib.rs_strerror(result).decode(errors="replace")
        raise DeltaError(f"librsync failed {what}: {reason}")


@contextlib.contextmanager
def _cfile(stream: IO[bytes], mode: str) -> Iterator[Any]:
    """A C FILE* on `stream`: on its descriptor when it is a real file
    (positioned where Python's buffer says), else through a temp file."""
    _, libc = _load()
    fd = _real_fd(stream)
    if fd is None:
        with tempfile.TemporaryFile() as spool:
            if mode == "rb":
                shutil.copyfileobj(stream, spool, BUFFER)
                spool.seek(0)
            with _cfile(spool, mode) as fp:
                yield fp
            if mode == "wb":
                spool.seek(0)
                shutil.copyfileobj(spool, stream, BUFFER)
        return
    if mode == "wb":
        stream.flush()
    dup = os.dup(fd)
    os.lseek(dup, stream.tell(), os.SEEK_SET)
    fp = libc.fdopen(dup, mode.encode())
    if not fp:
        os.close(dup)
        raise DeltaError(f"fdopen failed: {os.strerror(ctypes.get_errno())}")
    try:
        yield fp
    finally:
        if mode == "wb":
            libc.fflush(fp)
        end = os.lseek(dup, 0, os.SEEK_CUR) if mode == "wb" else None
        libc.fclose(fp)
        if end is not None:
            stream.seek(end)
        elif mode == "rb":
            stream.seek(0, os.SEEK_END)


def _real_fd(stream: IO[bytes]) -> int | None:
    try:
        fd = stream.fileno()
        stream.tell()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if isinstance(fd, int) else None


def _size(stream: IO[bytes]) -> int | None:
    fd = _real_fd(stream)
    if fd is None:
        return None
    return os.fstat(fd).st_size - stream.tell()


def signature(basis: IO[bytes], out: IO[bytes], *, hash: HashName = "blake2", block_len: int | None = None,
              strong_len: int | None = None, basis_size: int | None = None) -> None:
    """Write the signature of `basis` to `out`."""
    lib, _ = _load()
    if block_len is None or strong_len is None:
        size = basis_size if basis_size is not None else _size(basis)
        rec_block, rec_strong = default_params(size if size is not None else 1 << 30, hash)
        block_len = block_len or rec_block
        strong_len = strong_len or rec_strong
    with _cfile(basis, "rb") as fin, _cfile(out, "wb") as fout:
        _check(lib, lib.rs_sig_file(fin, fout, block_len, strong_len, MAGIC[hash], None), "making a signature")


def delta(sig: IO[bytes], new: IO[bytes], out: IO[bytes]) -> None:
    """Write the delta that turns the signature's basis into `new`."""
    lib, _ = _load()
    sumset = ctypes.c_void_p()
    with _cfile(sig, "rb") as fsig:
        _check(lib, lib.rs_loadsig_file(fsig, ctypes.byref(sumset), None), "reading the signature")
    try:
        _check(lib, lib.rs_build_hash_table(sumset), "indexing the signature")
        with _cfile(new, "rb") as fnew, _cfile(out, "wb") as fout:
            _check(lib, lib.rs_delta_file(sumset, fnew, fout, None), "computing the delta")
    finally:
        lib.rs_free_sumset(sumset)


def patch(basis: IO[bytes], delta_stream: IO[bytes], out: IO[bytes]) -> None:
    """Apply `delta_stream` to `basis` (seekable), writing the result to `out`."""
    lib, _ = _load()
    with _cfile(basis, "rb") as fbasis, _cfile(delta_stream, "rb") as fdelta, _cfile(out, "wb") as fout:
        _check(lib, lib.rs_patch_file(fbasis, fdelta, fout, None), "applying the delta")

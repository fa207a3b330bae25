"""librsync signature / delta / patch over binary streams, at C speed.

A small ctypes binding of our own to the system librsync (>= 1.0; Debian's
librsync2), not PyPI's python-librsync 0.1-5, which only works with 0.9.7
(docs/delta.md).

    signature(basis, out, *, hash="blake2"|"md4", block_len=None, strong_len=None, basis_size=None)
    delta(sig, new, out)
    patch(basis, delta, out)

Every call drives one librsync job (rs_job_iter) with 256 KiB buffers. Python
only moves a buffer at a time between the streams and librsync; the rolling
sums, strong sums and hash lookups run in C with the GIL released, so worker
threads run in parallel. Memory is the two buffers, plus, for a delta, the
loaded signature. Streams are read to their end and written sequentially;
any readable/writable binary stream works (files, BytesIO, HTTP bodies). A
patch basis must be seekable: with a real file, librsync reads it through
stdio itself (rs_file_copy_cb) and its position is restored afterwards.
"""

from __future__ import annotations

import ctypes
import io
import math
import os
import re
import threading
from collections.abc import Callable
from typing import IO, Any, Literal

from syncagent.errors import SyncAgentError

HashName = Literal["blake2", "md4"]

# librsync.h rs_magic_number. md4: the 0.9.7 format the SmartFile sync API
# speaks. blake2: BLAKE2 strong sums with the same classic rollsum, readable
# by every librsync >= 1.0. The RabinKarp variants (0x72730146/47, rdiff's
# default since 2.2) are not written: older librsyncs cannot read them and,
# measured, they are ~10 % slower here (docs/delta.md). Signatures in any of
# the four formats are accepted by delta().
MAGIC: dict[str, int] = {"md4": 0x72730136, "blake2": 0x72730137}
MAX_STRONG = {"md4": 16, "blake2": 32}
# Measured at 1 GiB (docs/delta.md): 256 KiB stays in the CPU cache between
# our read and librsync's scan; 1 MiB costs ~2 % and 4 MiB ~5 %, 64 KiB
# starts paying for Python per call.
BUFFER = 256 << 10

RS_DONE, RS_BLOCKED, RS_IO_ERROR, RS_INPUT_ENDED = 0, 1, 100, 103
RS_LOG_WARNING = 4


class DeltaUnavailable(SyncAgentError):
    """librsync (>= 1.0) cannot be loaded."""


class DeltaError(SyncAgentError):
    """librsync refused its input: a corrupt or truncated signature or delta, or a
    delta that copies beyond its basis. Errors of the streams themselves
    (OSError and the like) propagate unchanged."""


class _Buffers(ctypes.Structure):
    _fields_ = [("next_in", ctypes.c_void_p), ("avail_in", ctypes.c_size_t), ("eof_in", ctypes.c_int),
                ("next_out", ctypes.c_void_p), ("avail_out", ctypes.c_size_t)]


# rs_copy_cb: rs_result (*)(void *opaque, rs_long_t pos, size_t *len, void **buf); rs_long_t is intmax_t.
_CopyCb = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int64, ctypes.POINTER(ctypes.c_size_t),
                           ctypes.POINTER(ctypes.c_void_p))
_TraceFn = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p)


class _Lib:
    """The loaded library. Immutable once built; shared by all threads."""

    def __init__(self, rs: Any, libc: Any, trace: Any) -> None:
        self.rs, self.libc = rs, libc
        self.trace = trace  # the C trace hook holds only this pointer: keep the callback alive
        self.file_copy_cb = ctypes.cast(rs.rs_file_copy_cb, ctypes.c_void_p)


_lib: _Lib | None = None
_load_lock = threading.Lock()
# librsync reports the detail of a failure ("got magic number 0x... rather
# than ...") only through its trace hook, synchronously on the failing
# thread: collect it per thread to put it into the DeltaError.
_messages = threading.local()


def _on_trace(level: int, msg: bytes | None) -> None:
    log: list[str] | None = getattr(_messages, "log", None)
    if log is not None and msg is not None and len(log) < 20:
        # "librsync: ERROR: (rs_patch_s_header) got magic number ..." -> the message
        log.append(re.sub(r"^librsync: [^(]*\(\w+\) ", "", msg.decode(errors="replace").strip()))


def _load() -> _Lib:
    global _lib
    if _lib is not None:
        return _lib
    with _load_lock:
        if _lib is None:
            _lib = _open()
        return _lib


def _open() -> _Lib:
    rs = None
    for name in ("librsync.so.2", "librsync.2.dylib", None):
        if name is None:
            from ctypes.util import find_library  # costly (it runs ldconfig): only when the usual names fail

            name = find_library("rsync")
            if name is None:
                break
        try:
            rs = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if rs is None:
        raise DeltaUnavailable("librsync is not installed; delta transfers need it (Debian/Ubuntu: "
                               "apt-get install librsync2; Fedora: dnf install librsync; macOS: brew install librsync)")
    # rs_build_hash_table arrived with 1.0 together with the signature-magic
    # argument of rs_sig_begin: a 0.9.x library would misread our calls.
    if not hasattr(rs, "rs_build_hash_table"):
        raise DeltaUnavailable("the installed librsync is older than 1.0; delta transfers need librsync 2 "
                               "(Debian/Ubuntu: apt-get install librsync2)")
    libc = ctypes.CDLL(None, use_errno=True)  # the C library is already in the process
    vp, sz, res = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int
    declarations: list[tuple[Any, Any, list[Any]]] = [
        (libc.fdopen, vp, [ctypes.c_int, ctypes.c_char_p]),
        (libc.fclose, ctypes.c_int, [vp]),
        (rs.rs_job_iter, res, [vp, ctypes.POINTER(_Buffers)]),
        (rs.rs_job_free, res, [vp]),
        (rs.rs_sig_begin, vp, [sz, sz, ctypes.c_int]),
        (rs.rs_loadsig_begin, vp, [ctypes.POINTER(vp)]),
        (rs.rs_build_hash_table, res, [vp]),
        (rs.rs_free_sumset, None, [vp]),
        (rs.rs_delta_begin, vp, [vp]),
        (rs.rs_patch_begin, vp, [vp, vp]),
        (rs.rs_strerror, ctypes.c_char_p, [res]),
        (rs.rs_trace_to, None, [vp]),
        (rs.rs_trace_set_level, None, [ctypes.c_int]),
    ]
    for fn, restype, argtypes in declarations:
        fn.restype, fn.argtypes = restype, argtypes
    if hasattr(rs, "rs_sig_args"):  # librsync >= 2.3
        rs.rs_sig_args.restype = res
        rs.rs_sig_args.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(sz),
                                   ctypes.POINTER(sz)]
    # By default librsync prints its errors on our stderr; route them here.
    trace = _TraceFn(_on_trace)
    rs.rs_trace_to(ctypes.cast(trace, vp))
    rs.rs_trace_set_level(RS_LOG_WARNING)
    return _Lib(rs, libc, trace)


def available() -> bool:
    """Whether librsync can be loaded (the engine then offers delta transfers)."""
    try:
        _load()
    except DeltaUnavailable:
        return False
    return True


def default_params(file_size: int, hash: HashName = "blake2") -> tuple[int, int]:
    """(block_len, strong_len) for a basis of `file_size` bytes (-1: unknown),
    as librsync's rs_sig_args recommends: block ~ sqrt(size) rounded down to
    128 bytes (at least 256), and the shortest strong sum that keeps a false
    match improbable for that many blocks, not rdiff's default of the maximum
    (32 bytes for BLAKE2), which only makes signatures 3-4x larger."""
    return _sig_args(file_size, hash, 0)


def _sig_args(file_size: int, hash: HashName, block_len: int) -> tuple[int, int]:
    lib = _load()
    if not hasattr(lib.rs, "rs_sig_args"):
        return _sig_args_rule(file_size, hash, block_len)
    magic = ctypes.c_int(MAGIC[hash])
    block = ctypes.c_size_t(block_len)
    strong = ctypes.c_size_t(ctypes.c_size_t(-1).value)  # -1: "minimum safe"
    _check(lib, lib.rs.rs_sig_args(file_size, ctypes.byref(magic), ctypes.byref(block), ctypes.byref(strong)),
           "choosing signature parameters")
    return int(block.value), int(strong.value)


def _sig_args_rule(file_size: int, hash: HashName, block_len: int = 0) -> tuple[int, int]:
    """rs_sig_args (librsync 2.3 sumset.c) for libraries that predate it."""
    def ln2(v: int) -> int:
        return max(v.bit_length() - 1, 0)

    if file_size < 0:
        return block_len or 2048, 12  # RS_DEFAULT_BLOCK_LEN, RS_DEFAULT_MIN_STRONG_LEN
    block = block_len or (256 if file_size <= 256 * 256 else math.isqrt(file_size) & ~127)
    strong = 2 + (ln2(file_size + (1 << 24)) + ln2(file_size // block + 1) + 7) // 8
    return block, min(strong, MAX_STRONG[hash])


def signature(basis: IO[bytes], out: IO[bytes], *, hash: HashName = "blake2", block_len: int | None = None,
              strong_len: int | None = None, basis_size: int | None = None) -> None:
    """Write the signature of `basis` (read to its end) to `out`. Unset lengths
    come from the basis size (`basis_size`, else measured when the stream is
    seekable) as in default_params()."""
    if hash not in MAGIC:
        raise ValueError(f"hash must be 'blake2' or 'md4', not {hash!r}")
    lib = _load()
    if block_len is None or strong_len is None:
        size = basis_size if basis_size is not None else _remaining(basis)
        block, strong = _sig_args(-1 if size is None else size, hash, block_len or 0)
        block_len = block if block_len is None else block_len
        strong_len = strong if strong_len is None else strong_len
    if block_len < 1 or not 1 <= strong_len <= MAX_STRONG[hash]:
        raise ValueError(f"block_len must be >= 1 and strong_len 1..{MAX_STRONG[hash]} for {hash}")
    _run(lib, lib.rs.rs_sig_begin(block_len, strong_len, MAGIC[hash]), basis, out, "making a signature")


def delta(sig: IO[bytes], new: IO[bytes], out: IO[bytes]) -> None:
    """Write the delta that turns the signature's basis into `new`."""
    lib = _load()
    sumset = ctypes.c_void_p()
    try:
        _run(lib, lib.rs.rs_loadsig_begin(ctypes.byref(sumset)), sig, None, "reading the signature")
        _check(lib, lib.rs.rs_build_hash_table(sumset), "indexing the signature")
        _run(lib, lib.rs.rs_delta_begin(sumset), new, out, "computing the delta")
    finally:
        if sumset:
            lib.rs.rs_free_sumset(sumset)


def patch(basis: IO[bytes], delta: IO[bytes], out: IO[bytes]) -> None:
    """Apply `delta` to `basis` (seekable; a real file is fastest), writing the result to `out`."""
    lib = _load()
    fd = _fileno(basis)
    if fd is None:
        cb = _CopyFrom(basis)
        _run(lib, lib.rs.rs_patch_begin(ctypes.cast(cb.c_func, ctypes.c_void_p), None), delta, out,
             "applying the delta", cb.errors)
        return
    # librsync fseeks and freads this FILE* itself, in C, for every COPY.
    basis.flush()
    position = basis.tell()
    dup = os.dup(fd)
    fp = lib.libc.fdopen(dup, b"rb")
    if not fp:
        os.close(dup)
        raise DeltaError(f"cannot read the basis: {os.strerror(ctypes.get_errno())}")
    try:
        _run(lib, lib.rs.rs_patch_begin(lib.file_copy_cb, fp), delta, out, "applying the delta")
    finally:
        lib.libc.fclose(fp)
        # The dup shares the file offset that librsync moved. Seeking to the
        # end first makes a buffered `basis` drop its buffer and really seek.
        basis.seek(0, os.SEEK_END)
        basis.seek(position)


class _CopyFrom:
    """A Python rs_copy_cb over a seekable stream. librsync hands the callback
    its own output buffer (*buf) to fill; we never point *buf at Python memory,
    so no Python buffer has to outlive the call."""

    def __init__(self, basis: IO[bytes]) -> None:
        self.basis = basis
        self.errors: list[BaseException] = []
        self.c_func = _CopyCb(self)

    def __call__(self, _opaque: int | None, pos: int, length: Any, buf: Any) -> int:
        try:
            want = int(length[0])
            if want == 0:
                return RS_DONE
            self.basis.seek(pos)
            target = (ctypes.c_char * want).from_address(buf[0])
            got = _read_into(self.basis, memoryview(target).cast("B"))
            if got == 0:
                self.errors.append(DeltaError(f"the delta copies from offset {pos}, beyond the end of the basis"))
                return RS_INPUT_ENDED
            length[0] = got
            return RS_DONE
        except BaseException as exc:  # an exception must not cross the C frames
            self.errors.append(exc)
            return RS_IO_ERROR


def _run(lib: _Lib, job: int | None, src: IO[bytes], dst: IO[bytes] | None, what: str,
         callback_errors: list[BaseException] | None = None) -> None:
    """Drive `job` to the end of `src`, writing its output to `dst`; frees the job."""
    if not job:
        raise DeltaError(f"librsync could not start {what}")
    inbuf = ctypes.create_string_buffer(BUFFER)
    outbuf = ctypes.create_string_buffer(BUFFER if dst is not None else 0)
    in_addr, out_addr = ctypes.addressof(inbuf), ctypes.addressof(outbuf)
    in_view, out_view = memoryview(inbuf).cast("B"), memoryview(outbuf).cast("B")
    bufs = _Buffers(in_addr, 0, 0, None, 0)
    _messages.log = []
    try:
        while True:
            if not bufs.eof_in:
                # librsync keeps nothing pointing into our input buffer
                # between calls: unconsumed bytes may move to its front.
                pending = int(bufs.avail_in)
                if pending and bufs.next_in != in_addr:
                    ctypes.memmove(in_addr, bufs.next_in, pending)
                bufs.next_in = in_addr
                if pending < BUFFER:
                    got = _read_into(src, in_view[pending:])
                    bufs.avail_in = pending + got
                    bufs.eof_in = got == 0
            if dst is not None:
                bufs.next_out, bufs.avail_out = out_addr, BUFFER
            result = lib.rs.rs_job_iter(job, ctypes.byref(bufs))
            if dst is not None and bufs.avail_out < BUFFER:
                _write_all(dst, out_view[:BUFFER - bufs.avail_out])
            if result == RS_DONE:
                return
            if result != RS_BLOCKED:
                if callback_errors:
                    raise callback_errors[0]
                _check(lib, result, what)
    finally:
        lib.rs.rs_job_free(job)
        _messages.log = None


def _check(lib: _Lib, result: int, what: str) -> None:
    if result != RS_DONE:
        reason = (lib.rs.rs_strerror(result) or b"error %d" % result).decode(errors="replace")
        log: list[str] = getattr(_messages, "log", None) or []
        detail = "; ".join(m for m in log if "job failed" not in m)
        raise DeltaError(f"librsync failed {what}: {reason}" + (f" ({detail})" if detail else ""))


def _read_into(stream: IO[bytes], view: memoryview) -> int:
    """Read up to len(view) bytes; 0 only at the end of the stream."""
    readinto: Callable[[memoryview], int | None] | None = getattr(stream, "readinto", None)
    if readinto is not None:
        got = readinto(view)
    else:
        data = stream.read(len(view))
        got = None if data is None else len(data)
        if got:
            view[:got] = data
    if got is None:
        raise DeltaError("a non-blocking stream had no data ready; delta streams must block")
    return got


def _write_all(stream: IO[bytes], view: memoryview) -> None:
    while view:
        written = stream.write(view)
        if not isinstance(written, int) or written >= len(view):
            return
        # A raw stream may take less than offered; 0 would loop forever.
        if written <= 0:
            raise DeltaError("the output stream took no bytes; delta streams must block")
        view = view[written:]


def _fileno(stream: IO[bytes]) -> int | None:
    try:
        fd = stream.fileno()
        stream.tell()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


def _remaining(stream: IO[bytes]) -> int | None:
    """Bytes left in a seekable stream, without disturbing it; None if unknowable."""
    try:
        if not stream.seekable():
            return None
        here = stream.tell()
        end = stream.seek(0, os.SEEK_END)
        stream.seek(here)
    except (AttributeError, OSError, ValueError):
        return None
    return max(end - here, 0)

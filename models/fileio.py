"""Small file helpers shared by the models and the pipeline: atomic writes,
checksums, and per-output locks."""
import contextlib
import errno
import fcntl
import hashlib
import os
import tempfile

# Errors of a write that a user fixes on the machine (space, quota, a bad disk),
# not in the project: reported in one line naming the file.
WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS)


class Busy(Exception):
    """Another live process holds the lock of an output; the message is one line."""


def fsync_path(path):
    """Flush ``path`` (a file or a directory) from the page cache to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    Readers never see a half-written file: on an exception the temporary
    file is removed and ``path`` is left as it was. The data reaches the disk
    before the rename. A write error (no space, I/O error) is re-raised as an
    OSError naming ``path`` rather than the temporary file.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-" + os.path.basename(path) + "-")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
    try:
        yield tmp
        fsync_path(tmp)
        os.replace(tmp, path)
    except OSError as e:
        if e.errno in WRITE_ERRORS:
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path, data):
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def atomic_savez(path, **arrays):
    """``np.savez`` to ``path``, atomically. The archive is built in memory first:
    NumPy leaves its zip writer open when a write fails (no space), which then
    prints a traceback when collected; a plain write fails cleanly."""
    import io

    import numpy as np
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getbuffer())


_SHA1_SEEN = {}


def sha1_of(path, chunk=1 << 20):
    """SHA1 of a file's contents. Remembered within the process for the same file
    (device, inode, size, modification time in ns): a cross-validation checks the
    same multi-GB data file once, not once per fold and evaluation."""
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _SHA1_SEEN:
        digest = hashlib.sha1()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(chunk), b""):
                digest.update(block)
        _SHA1_SEEN[key] = digest.hexdigest()
    return _SHA1_SEEN[key]


@contextlib.contextmanager
def exclusive(lock_path, what, wait=False):
    """Hold an exclusive lock on ``lock_path`` (created if missing) for the block.

    When another process holds it: with ``wait``, block until it is released
    (for locks held a moment); else raise Busy at once, naming ``what`` and the
    holder's pid. The kernel drops the lock when its holder exits or is
    killed, so no stale lock is ever left behind.
    """
    os.makedirs(os.path.dirname(os.path.abspath(lock_path)), exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise Busy("%s is in use by another process (pid %s); wait for it to finish or "
                       "stop it" % (what, holder)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)

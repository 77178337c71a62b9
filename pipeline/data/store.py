"""The crash-safe image store that ``preprocess`` builds: ``OUT.partial`` (HDF5) and its
journal, resumable after a kill at any instant, checked against the pixels' checksums
before it is renamed to ``OUT``."""
import errno
import hashlib
import json
import os
import re
import sys

import h5py
import numpy as np
from h5py import h5d, h5p, h5s, h5t

from models.fileio import fsync_path

from ..errors import InputError
from .splits import SPLITS, patient_of


def source_folder(store_path, source):
    """The images' folder a store names in attrs ``source``: relative to the store's
    folder (absolute in stores made before it was relative)."""
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(str(store_path))),
                                         source))


def pixels_sha1(image):
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


def mismatched(images, entries):
    """Indices of journal ``entries`` whose stored pixels in ``images`` differ from
    the checksum journalled for them."""
    return [i for i, e in sorted(entries.items())
            if "sha1" in e and pixels_sha1(images[i]) != e["sha1"]]


class Partial(object):
    """The store under construction: ``OUT.partial`` (HDF5) and its journal
    ``OUT.partial.journal``.

    The journal is the only record of which images are done. Its first line
    is a token also stored in the HDF5 file (the two belong together: the SHA1
    of the settings and the image list, so that a finished file's bytes
    depend on nothing else); then
    one JSON line per image, ``{"i": index, "sha1": of the pixels}`` or
    ``{"i": index, "error": why it was skipped}``. Lines are appended only
    after the pixels they name have been flushed and fsynced, so a kill at any
    instant leaves each image either stored and journalled, or not journalled.
    ``images`` is contiguous and allocated when the file is made (its disk
    space reserved at once), so writing pixels never changes HDF5 metadata.
    """

    FINISH_SPACE = 1 << 20  # bytes free before the final flags and counts are written

    def __init__(self, out):
        self.path, self.journal_path = out + ".partial", out + ".partial.journal"
        self.file = self.journal = None
        self.entries = {}

    def create(self, rows, config, splits):
        n, size = len(rows), config["size"]
        for path in (self.path, self.journal_path):
            if os.path.exists(path):
                os.unlink(path)
        # The job's fingerprint, not a random one: the finished file's bytes depend only
        # on the images and settings (every run records their SHA1).
        token = hashlib.sha1(json.dumps([sorted(config.items()), [r[:2] for r in rows]],
                                        default=str).encode()).hexdigest()
        with h5py.File(self.path, "w") as f:
            dcpl = h5p.create(h5p.DATASET_CREATE)
            dcpl.set_layout(h5d.CONTIGUOUS)
            dcpl.set_alloc_time(h5d.ALLOC_TIME_EARLY)
            dcpl.set_fill_time(h5d.FILL_TIME_NEVER)
            dcpl.set_obj_track_times(False)  # as h5py's create_dataset: no times in the bytes
            h5d.create(f.id, b"images", h5t.NATIVE_UINT8, h5s.create_simple((n, size, size, 3)),
                       dcpl=dcpl)
            f.create_dataset("level", data=np.array([r[1] for r in rows], np.int8))
            strings = h5py.string_dtype()
            f.create_dataset("name", data=np.array([r[0] for r in rows], object), dtype=strings)
            f.create_dataset("patient", data=np.array([patient_of(r[0]) for r in rows], object),
                             dtype=strings)
            f.create_dataset("split", data=splits)
            f.create_dataset("ok", data=np.zeros(n, bool))  # allocated now, written at the end
            f.attrs.update(config)
            f.attrs["split_names"] = json.dumps(SPLITS)
            f.attrs["token"] = token
        try:
            self._reserve()
        except OSError as e:
            os.unlink(self.path)
            raise InputError("%s: cannot reserve %.0f MB for the images (%s); free space and run "
                             "again" % (self.path, n * size * size * 3 / 1e6, write_error_reason(e)))
        with open(self.journal_path, "w") as j:
            j.write(token + "\n")
        fsync_path(self.journal_path)
        self._open()

    def resume(self, rows, config):
        """Open an existing partial store if it is this job's and sound; returns
        True when resumed, False (with a message) when it has to start over."""
        if not os.path.exists(self.path):
            return False
        why = self._check(rows, config)
        if why is None:
            self._reserve()  # no space now is a write error: the partial is kept
            return True
        self.close()
        self.entries = {}
        print("preprocess: %s: %s; starting over" % (self.path, why), file=sys.stderr)
        return False

    def _check(self, rows, config):
        try:
            with open(self.journal_path) as j:
                lines = j.read().split("\n")
        except OSError:
            return "no journal beside it (left by an older version or another program)"
        try:
            self._open()
            f = self.file
            if any(f.attrs.get(k) != v for k, v in config.items()) or len(f["ok"]) != len(rows):
                return "made from other labels or settings"
            if f.attrs.get("token") != lines[0]:
                return "its journal does not match it"
            if lines[-1]:  # a torn last line (killed mid-write): not trusted, ended
                self.journal.write("\n")
            for line in lines[1:]:
                try:
                    entry = json.loads(line)
                    self.entries[int(entry["i"])] = entry
                except (ValueError, KeyError, TypeError):
                    continue
            bad = mismatched(f["images"], self.entries)
        except OSError as e:
            return "unreadable (%s)" % str(e).splitlines()[0]
        for i in bad:
            del self.entries[i]
        print("preprocess: resuming %s: %d images verified%s" % (
            self.path, len(self.entries),
            ", %d whose stored pixels did not match their journal done again" % len(bad)
            if bad else ""), file=sys.stderr)
        return None

    def _reserve(self):
        """Allocate the disk blocks of the images: no space shows now, not hours in."""
        fd = os.open(self.path, os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _open(self):
        self.file = h5py.File(self.path, "r+")
        self.journal = open(self.journal_path, "a")

    def store(self, i, image):
        self.file["images"][i] = image
        return {"i": int(i), "sha1": pixels_sha1(image)}

    def commit(self, pending):
        """Make the pixels of ``pending`` durable, then journal them."""
        if not pending:
            return
        self.file.flush()
        os.fsync(self.file.id.get_vfd_handle())
        self.journal.write("".join(json.dumps(e) + "\n" for e in pending))
        self.journal.flush()
        os.fsync(self.journal.fileno())
        for e in pending:
            self.entries[e["i"]] = e
        del pending[:]

    def finish(self, out, rows, splits):
        """Write the flags and counts, close, and rename the store to ``out``.

        These are the only writes of HDF5 metadata after the file was made, and a
        failed metadata write can leave an HDF5 file unreadable: they start only
        when the disk has room to spare (the journal keeps the work otherwise).
        """
        free = os.statvfs(self.path)
        if free.f_bavail * free.f_frsize < self.FINISH_SPACE:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self.path)
        f = self.file
        ok = np.zeros(len(rows), bool)
        ok[[i for i, e in self.entries.items() if "sha1" in e]] = True
        failed = [e["error"] for _, e in sorted(self.entries.items()) if "error" in e]
        f["ok"][:] = ok
        classes = f.attrs.get("classes")
        k_labels = len(json.loads(classes)) if classes is not None else 5
        counts = {name: np.bincount(f["level"][:][ok & (splits == k)],
                                    minlength=k_labels).tolist()
                  for k, name in enumerate(SPLITS)}
        f.attrs["counts"] = json.dumps(counts)
        f.attrs["failed"] = json.dumps(failed)
        f.flush()  # raises on a write error, where close() would only warn
        self.close()
        with h5py.File(self.path, "r") as f:  # read back what the final file will hold
            bad = mismatched(f["images"], self.entries)
            if bad or not np.array_equal(f["ok"][:], ok):
                raise InputError("%s: %d images read back differently from what was written; "
                                 "the disk may be failing" % (self.path, len(bad)))
        fsync_path(self.path)
        os.replace(self.path, out)
        fsync_path(os.path.dirname(os.path.abspath(out)))
        os.unlink(self.journal_path)
        return ok, failed, counts

    def close(self):
        for handle in (self.journal, self.file):
            try:
                if handle is not None:
                    handle.close()
            except (OSError, RuntimeError):
                pass  # the error that brought us here is the one to report
        self.file = self.journal = None


def write_error_reason(error):
    """The cause of a write error in a few words (h5py's messages run over many lines)."""
    if getattr(error, "errno", None):
        return os.strerror(error.errno)
    text = str(error)
    match = re.search(r"error message = '([^']+)'", text)
    return match.group(1) if match else text.splitlines()[0]

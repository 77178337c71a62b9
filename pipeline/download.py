"""Downloads: the BVLC GoogLeNet weights (resumable, SHA1-checked)."""
import os
import urllib.error
import urllib.request

from tqdm import tqdm

from models.fileio import sha1_of

from .errors import InputError

BVLC_GOOGLENET_URL = "http://dl.caffe.berkeleyvision.org/bvlc_googlenet.caffemodel"
BVLC_GOOGLENET_SHA1 = "405fc5acd08a3bb12de8ee5e23a96bec22f08204"


def download(url, out, sha1, timeout=30, chunk=1 << 16):
    """Fetch ``url`` to ``out``, resuming ``out + '.part'``; check ``sha1``.

    The file appears at ``out`` only once complete and verified. Raises
    InputError with a one-line message (how to place the file by hand when
    the network is missing; both checksums when they differ).
    """
    if os.path.exists(out) and sha1_of(out) == sha1:
        return out
    part = out + ".part"
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url, headers={"Range": "bytes=%d-" % have} if have else {})
    by_hand = "download it elsewhere and put it at %s (SHA1 %s)" % (out, sha1)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if have and response.status != 206:
                have = 0  # the server ignored the range: start again
            total = response.length + have if response.length is not None else None
            with open(part, "ab" if have else "wb") as f, tqdm(
                    total=total, initial=have, unit="B", unit_scale=True,
                    desc=os.path.basename(out)) as bar:
                for block in iter(lambda: response.read(chunk), b""):
                    f.write(block)
                    bar.update(len(block))
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # range past the end: the .part is complete
            pass
        else:
            raise InputError("%s: HTTP %d from %s; %s" % (out, e.code, url, by_hand))
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise InputError("%s: cannot download %s (%s); %s" % (out, url, reason, by_hand))
    got = sha1_of(part)
    if got != sha1:
        os.unlink(part)
        raise InputError("%s: SHA1 of the download is %s, expected %s; removed it, run again"
                         % (out, got, sha1))
    os.replace(part, out)
    return out


def download_weights(out):
    return download(BVLC_GOOGLENET_URL, out, BVLC_GOOGLENET_SHA1)

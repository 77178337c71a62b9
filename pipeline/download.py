"""Downloads: the BVLC GoogLeNet weights (resumable, SHA1-checked)."""
import os
import urllib.error
import urllib.request

from tqdm import tqdm

from models.fileio import atomic_path, sha1_of

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


KAGGLE_COMPETITION = "diabetic-retinopathy-detection"
KAGGLE_FILES = ["trainLabels.csv.zip"] + ["train.zip.%03d" % i for i in range(1, 6)]
BY_HAND = ("place the competition's files by hand as %s/train/*.jpeg and %s/trainLabels.csv "
           "(or run make preprocess DATA=<any dir with images/ and labels.csv>)")


def kaggle_credentials():
    """Where Kaggle credentials are, or None."""
    if os.environ.get("KAGGLE_API_TOKEN") or (
            os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY")):
        return "environment"
    home = os.path.join(os.path.expanduser("~"), ".kaggle")
    for name in ("access_token", "kaggle.json"):
        if os.path.exists(os.path.join(home, name)):
            return os.path.join(home, name)
    return None


def kaggle_layout_complete(raw_dir):
    train = os.path.join(raw_dir, "train")
    return (os.path.exists(os.path.join(raw_dir, "trainLabels.csv")) and os.path.isdir(train)
            and any(n.endswith(".jpeg") for n in os.listdir(train)))


def download_kaggle(raw_dir="data/kaggle"):
    """The Kaggle 2015 DR training set into ``raw_dir/train`` + ``trainLabels.csv``.

    Resumable per file: parts already in ``raw_dir/downloads`` are kept, members
    already extracted are not extracted again. Raises InputError (one line, with
    how to place the files by hand) without credentials or network.
    """
    import zipfile
    if kaggle_layout_complete(raw_dir):
        return raw_dir
    hand = BY_HAND % (raw_dir, raw_dir)
    if kaggle_credentials() is None:
        raise InputError("%s: no Kaggle credentials (KAGGLE_API_TOKEN or ~/.kaggle/access_token); "
                         "%s" % (raw_dir, hand))
    downloads = os.path.join(raw_dir, "downloads")
    os.makedirs(downloads, exist_ok=True)
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi
        api = KaggleApi()
        api.authenticate()
        for name in KAGGLE_FILES:
            if not os.path.exists(os.path.join(downloads, name)):
                api.competition_download_file(KAGGLE_COMPETITION, name, path=downloads, quiet=False)
    except Exception as e:  # the client raises many kinds, all mean "no data"
        raise InputError("%s: Kaggle download of %s failed (%s); %s"
                         % (raw_dir, KAGGLE_COMPETITION, str(e).splitlines()[0] if str(e) else
                            type(e).__name__, hand))
    with zipfile.ZipFile(os.path.join(downloads, "trainLabels.csv.zip")) as z:
        z.extractall(raw_dir)
    joined = os.path.join(downloads, "train.zip")
    if not os.path.exists(joined):  # the parts are one split zip archive
        with atomic_path(joined) as tmp, open(tmp, "wb") as out:
            for name in KAGGLE_FILES[1:]:
                with open(os.path.join(downloads, name), "rb") as part:
                    while True:
                        block = part.read(1 << 24)
                        if not block:
                            break
                        out.write(block)
    with zipfile.ZipFile(joined) as z:
        members = [m for m in z.namelist()
                   if not m.endswith("/") and not os.path.exists(os.path.join(raw_dir, m))]
        for member in tqdm(members, unit="file", desc="extract"):
            # each file through a temporary name: a killed run leaves no half image
            with z.open(member) as src, atomic_path(os.path.join(raw_dir, member)) as tmp:
                with open(tmp, "wb") as dst:
                    dst.write(src.read())
    return raw_dir

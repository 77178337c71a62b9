"""Downloads: the BVLC GoogLeNet weights (resumable, SHA1-checked); Kaggle's training
and test sets (per file resumable, split archives joined and extracted)."""
import os
import re
import urllib.error
import urllib.request
import zipfile

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
#: the test set's split archive, its parts found in the competition's file list
TEST_PARTS = re.compile(r"test\.zip\.(\d{3})")
BY_HAND = ("place the competition's files by hand as %s/train/*.jpeg and %s/trainLabels.csv "
           "(or run make preprocess DATA=<any dir with images/ and labels.csv>)")
TEST_BY_HAND = ("place Kaggle's test images by hand as %s/test/*.jpeg (and run make kaggle-test "
                "DATA=<that folder>)")


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


def has_images(folder):
    return os.path.isdir(folder) and any(n.endswith(".jpeg") for n in os.listdir(folder))


def kaggle_layout_complete(raw_dir, test=False):
    """Whether ``raw_dir`` holds the training set (and, with ``test``, the test set)."""
    return (os.path.exists(os.path.join(raw_dir, "trainLabels.csv"))
            and has_images(os.path.join(raw_dir, "train"))
            and (not test or has_images(os.path.join(raw_dir, "test"))))


def kaggle_api():
    """The Kaggle client, authenticated."""
    from kaggle.api.kaggle_api_extended import KaggleApi
    api = KaggleApi()
    api.authenticate()
    return api


def test_parts(api):
    """The names of the test set's archive parts in the competition's file list, in order
    (001 to N, none missing)."""
    names, token = [], None
    while True:
        page = api.competition_list_files(KAGGLE_COMPETITION, page_token=token, page_size=200)
        names += [f.name for f in page.files]
        token = page.next_page_token
        if not token:
            break
    parts = sorted((int(m.group(1)), m.group(0)) for m in map(TEST_PARTS.fullmatch, names) if m)
    if not parts or [n for n, _ in parts] != list(range(1, len(parts) + 1)):
        raise ValueError("the competition's file list has test.zip parts %s, not 001 to N"
                         % ([name for _, name in parts] or "none"))
    return [name for _, name in parts]


def download_kaggle(raw_dir="data/kaggle", test=True, api=None):
    """The Kaggle 2015 DR training set into ``raw_dir/train`` + ``trainLabels.csv`` and,
    with ``test``, its 53,576 test images into ``raw_dir/test``.

    Resumable per file: parts already in ``raw_dir/downloads`` are kept, members
    already extracted are not extracted again. Raises InputError (one line, with
    how to place the files by hand) without credentials or network. ``api``: a
    Kaggle client (the real one, authenticated, when None).
    """
    if kaggle_layout_complete(raw_dir, test):
        return raw_dir
    hand = (BY_HAND % (raw_dir, raw_dir) if not kaggle_layout_complete(raw_dir)
            else TEST_BY_HAND % raw_dir)
    if api is None and kaggle_credentials() is None:
        raise InputError("%s: no Kaggle credentials (KAGGLE_API_TOKEN or ~/.kaggle/access_token); "
                         "%s" % (raw_dir, hand))
    downloads = os.path.join(raw_dir, "downloads")
    os.makedirs(downloads, exist_ok=True)
    try:
        api = api or kaggle_api()
        archives = [("train.zip", KAGGLE_FILES[1:])] + ([("test.zip", test_parts(api))]
                                                         if test else [])
        for name in KAGGLE_FILES[:1] + [p for _, parts in archives for p in parts]:
            if not os.path.exists(os.path.join(downloads, name)):
                api.competition_download_file(KAGGLE_COMPETITION, name, path=downloads, quiet=False)
    except Exception as e:  # the client raises many kinds, all mean "no data"
        raise InputError("%s: Kaggle download of %s failed (%s); %s"
                         % (raw_dir, KAGGLE_COMPETITION, str(e).splitlines()[0] if str(e) else
                            type(e).__name__, hand))
    with zipfile.ZipFile(os.path.join(downloads, "trainLabels.csv.zip")) as z:
        z.extractall(raw_dir)
    for joined, parts in archives:
        extract(join_parts(downloads, joined, parts), raw_dir)
    return raw_dir


def join_parts(downloads, joined, parts):
    """The parts of a split zip archive, concatenated once into ``downloads/joined``."""
    joined = os.path.join(downloads, joined)
    if not os.path.exists(joined):
        with atomic_path(joined) as tmp, open(tmp, "wb") as out:
            for name in parts:
                with open(os.path.join(downloads, name), "rb") as part:
                    while True:
                        block = part.read(1 << 24)
                        if not block:
                            break
                        out.write(block)
    return joined


def extract(archive, raw_dir):
    """The members of ``archive`` not yet in ``raw_dir``, each through a temporary name (a
    killed run leaves no half image)."""
    try:
        z = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as e:
        os.unlink(archive)  # joined from incomplete parts: joined again next time
        raise InputError("%s: not a zip archive (%s); removed it: check the parts beside it and "
                         "run again" % (archive, e))
    with z:
        members = [m for m in z.namelist()
                   if not m.endswith("/") and not os.path.exists(os.path.join(raw_dir, m))]
        for member in tqdm(members, unit="file", desc="extract %s" % os.path.basename(archive)):
            with z.open(member) as src, atomic_path(os.path.join(raw_dir, member)) as tmp:
                with open(tmp, "wb") as dst:
                    dst.write(src.read())

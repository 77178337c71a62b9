"""Resumable, checksummed download against a local HTTP server on loopback; Kaggle's
training and test sets from generated split archives through a fake client."""
import hashlib
import http.server
import io
import os
import threading
import types
import zipfile

import pytest

from pipeline.download import download
from pipeline.errors import InputError

PAYLOAD = bytes(range(256)) * 4000  # ~1 MB
SHA1 = hashlib.sha1(PAYLOAD).hexdigest()


class RangeHandler(http.server.BaseHTTPRequestHandler):
    ranges = []

    def do_GET(self):
        start = 0
        header = self.headers.get("Range")
        RangeHandler.ranges.append(header)
        if header:
            start = int(header.split("=")[1].rstrip("-"))
            self.send_response(206)
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.HTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    RangeHandler.ranges = []
    yield "http://127.0.0.1:%d/model.caffemodel" % httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_download_and_verify(tmp_path, server):
    out = tmp_path / "w" / "model.caffemodel"
    download(server, str(out), SHA1)
    assert out.read_bytes() == PAYLOAD and not (tmp_path / "w" / "model.caffemodel.part").exists()


def test_resume_a_partial_download(tmp_path, server):
    out = tmp_path / "model.caffemodel"
    (tmp_path / "model.caffemodel.part").write_bytes(PAYLOAD[:300000])
    download(server, str(out), SHA1)
    assert RangeHandler.ranges == ["bytes=300000-"]
    assert out.read_bytes() == PAYLOAD


def test_checksum_mismatch_leaves_no_file(tmp_path, server):
    out = tmp_path / "model.caffemodel"
    with pytest.raises(InputError, match="SHA1") as e:
        download(server, str(out), "0" * 40)
    assert str(out) in str(e.value)
    assert not out.exists() and not (tmp_path / "model.caffemodel.part").exists()


def test_offline_says_where_to_put_the_file(tmp_path):
    import socket
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "model.caffemodel"
    with pytest.raises(InputError) as e:
        download("http://127.0.0.1:%d/x" % port, str(out), SHA1, timeout=5)
    msg = str(e.value)
    assert "put it at %s" % out in msg and SHA1 in msg and "\n" not in msg


def test_kaggle_without_credentials_says_how_to_place_files(tmp_path, monkeypatch):
    from pipeline.download import download_kaggle
    for var in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(InputError) as e:
        download_kaggle(str(tmp_path / "raw"))
    msg = str(e.value)
    assert "no Kaggle credentials" in msg and "raw/train/*.jpeg" in msg
    assert "trainLabels.csv" in msg and "\n" not in msg


def test_kaggle_layout_already_there_is_kept(tmp_path, monkeypatch):
    from pipeline.download import download_kaggle
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "10_left.jpeg").write_bytes(b"x")
    (tmp_path / "trainLabels.csv").write_text("image,level\n10_left,0\n")
    monkeypatch.setenv("HOME", str(tmp_path / "nohome"))
    assert download_kaggle(str(tmp_path), test=False) == str(tmp_path)
    with pytest.raises(InputError,
                       match=r"no Kaggle credentials.*test images by hand as .*/test/\*\.jpeg"):
        download_kaggle(str(tmp_path))  # the test set is not there yet
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "1_left.jpeg").write_bytes(b"x")
    assert download_kaggle(str(tmp_path)) == str(tmp_path)


def split_zip(members, parts):
    """A zip archive of ``members`` ({name: bytes}) cut into ``parts`` pieces, as Kaggle
    serves its split archives (the pieces' concatenation is the archive)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    data = buf.getvalue()
    cut = -(-len(data) // parts)
    return [data[i:i + cut] for i in range(0, len(data), cut)]


class FakeKaggle(object):
    """The two calls download_kaggle makes, on files held in memory; ``fail_on``: the
    download of that file raises as the client does offline."""

    def __init__(self, files, fail_on=None, page_size=3):
        self.files, self.fail_on, self.page_size, self.fetched = files, fail_on, page_size, []

    def competition_list_files(self, competition, page_token=None, page_size=20):
        names = sorted(self.files)
        start = int(page_token or 0)
        end = start + min(page_size, self.page_size)
        return types.SimpleNamespace(
            files=[types.SimpleNamespace(name=n) for n in names[start:end]],
            next_page_token=str(end) if end < len(names) else "")

    def competition_download_file(self, competition, name, path, quiet=True):
        if name == self.fail_on:
            raise ConnectionError("Max retries exceeded with url: /api/v1/competitions (%s)"
                                  % name)
        self.fetched.append(name)
        with open(os.path.join(path, name), "wb") as f:
            f.write(self.files[name])


def kaggle_files(test_parts=7):
    labels = io.BytesIO()
    with zipfile.ZipFile(labels, "w") as z:
        z.writestr("trainLabels.csv", "image,level\n10_left,0\n10_right,2\n")
    train = split_zip({"train/10_left.jpeg": b"L" * 3000, "train/10_right.jpeg": b"R" * 3000}, 5)
    test = split_zip({"test/%d_%s.jpeg" % (i, side): bytes([i]) * 2000 for i in range(1, 8)
                      for side in ("left", "right")}, test_parts)
    files = {"trainLabels.csv.zip": labels.getvalue(), "sampleSubmission.csv.zip": b"zip",
             "sample.zip": b"zip"}
    files.update(("train.zip.%03d" % (i + 1), part) for i, part in enumerate(train))
    files.update(("test.zip.%03d" % (i + 1), part) for i, part in enumerate(test))
    return files


def test_kaggle_train_and_test_sets_from_split_archives(tmp_path):
    from pipeline.download import download_kaggle
    api = FakeKaggle(kaggle_files())
    raw = tmp_path / "kaggle"
    assert download_kaggle(str(raw), api=api) == str(raw)
    assert (raw / "train" / "10_right.jpeg").read_bytes() == b"R" * 3000
    assert sorted(os.listdir(raw / "test")) == sorted(
        "%d_%s.jpeg" % (i, s) for i in range(1, 8) for s in ("left", "right"))
    assert (raw / "test" / "7_right.jpeg").read_bytes() == bytes([7]) * 2000
    assert "sample.zip" not in api.fetched and len(api.fetched) == 1 + 5 + 7
    again = FakeKaggle(kaggle_files())
    download_kaggle(str(raw), api=again)  # complete: nothing fetched again
    assert again.fetched == []


def test_kaggle_test_download_resumes_after_going_offline(tmp_path):
    from pipeline.download import download_kaggle
    raw = tmp_path / "kaggle"
    with pytest.raises(InputError) as e:
        download_kaggle(str(raw), api=FakeKaggle(kaggle_files(), fail_on="test.zip.004"))
    msg = str(e.value)
    assert "Kaggle download of diabetic-retinopathy-detection failed (Max retries" in msg
    assert "\n" not in msg and not (raw / "test").exists()
    api = FakeKaggle(kaggle_files())
    download_kaggle(str(raw), api=api)  # the parts already there are kept
    assert api.fetched == ["test.zip.%03d" % i for i in range(4, 8)]
    assert len(os.listdir(raw / "test")) == 14


def test_a_gap_in_the_listed_test_parts_is_refused_before_any_download(tmp_path):
    from pipeline.download import download_kaggle
    files = kaggle_files()
    del files["test.zip.003"]
    api = FakeKaggle(files)
    with pytest.raises(InputError, match="test.zip parts .*not 001 to N"):
        download_kaggle(str(tmp_path / "kaggle"), api=api)
    assert api.fetched == []


def test_a_corrupt_joined_archive_is_removed_and_named(tmp_path):
    from pipeline.download import download_kaggle
    files = kaggle_files()
    files["test.zip.007"] = b"garbage"
    raw = tmp_path / "kaggle"
    with pytest.raises(InputError, match="test.zip: not a zip archive.*removed it"):
        download_kaggle(str(raw), api=FakeKaggle(files))
    assert not (raw / "downloads" / "test.zip").exists()

"""Resumable, checksummed download against a local HTTP server on loopback."""
import hashlib
import http.server
import threading

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
    assert download_kaggle(str(tmp_path)) == str(tmp_path)

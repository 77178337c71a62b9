"""The Makefile's own guards."""
import subprocess

import pytest

from tests.conftest import ROOT


@pytest.mark.skipif(not (ROOT / ".venv" / ".installed-stamp").exists(),
                    reason="make install has not run (the target would install first)")
def test_preprocess_of_a_directory_that_does_not_exist_is_an_error_not_a_download(tmp_path):
    typo = tmp_path / "fundus-smaple"
    proc = subprocess.run(["make", "-s", "--no-print-directory", "preprocess", "DATA=%s" % typo],
                          cwd=str(ROOT), capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "error: %s: no labels.csv or trainLabels.csv" % typo in proc.stderr
    assert "Kaggle" not in proc.stderr + proc.stdout and not typo.exists()

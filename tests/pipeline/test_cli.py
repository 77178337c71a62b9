"""pipeline.cli: which errors become one line and which keep their traceback."""
import pytest

from pipeline import cli
from pipeline.errors import InputError


def test_a_users_error_is_one_line_and_a_bug_keeps_its_traceback(monkeypatch, capsys):
    def fails_for_the_user(args):
        raise InputError("data.h5: no such file")
    monkeypatch.setattr(cli, "cmd_report", fails_for_the_user)
    assert cli.main(["report", "--runs", "r", "--data", "d.h5"]) == 2
    assert capsys.readouterr().err == "error: data.h5: no such file\n"

    def has_a_bug(args):
        return {}["auc"]
    monkeypatch.setattr(cli, "cmd_report", has_a_bug)
    with pytest.raises(KeyError, match="auc"):  # no "error: 'auc'"
        cli.main(["report", "--runs", "r", "--data", "d.h5"])

"""The tracking URI is checked (and a SQLite path made absolute) at the boundary, without MLflow or TensorFlow."""
import subprocess
import sys

import pytest

from pipeline_vae.tracking import check_tracking_uri


def test_a_relative_sqlite_path_becomes_absolute_and_servers_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_tracking_uri(None) == f"sqlite:///{tmp_path}/mlruns.db"
    assert check_tracking_uri("sqlite:///sub/../runs.db") == f"sqlite:///{tmp_path}/runs.db"
    assert check_tracking_uri(f"sqlite:///{tmp_path}/a.db") == f"sqlite:///{tmp_path}/a.db"
    assert check_tracking_uri("http://10.0.0.5:5000") == "http://10.0.0.5:5000"


@pytest.mark.parametrize("uri, message", [
    ("sqlite:///{tmp}/missing/x.db", "tracking_uri: folder {tmp}/missing of sqlite:///{tmp}/missing/x.db does not "
     "exist"),
    ("sqlite:////proc/mlruns.db", "tracking_uri: /proc/mlruns.db cannot be written (No such file or directory; "
     "sqlite:////proc/mlruns.db)"),
    ("sqlite:///{tmp}", "tracking_uri: {tmp} cannot be written (Is a directory; sqlite:///{tmp})"),
    ("./mlruns", "tracking_uri: expected sqlite:///PATH.db or a server (http://HOST:PORT), got './mlruns' (MLflow 3 "
     "refuses a folder store unless MLFLOW_ALLOW_FILE_STORE=true)"),
    ("sqlite://", "tracking_uri: expected sqlite:///PATH (a file), got 'sqlite://'"),
    ("ftp://host/x", "tracking_uri: expected sqlite:///PATH.db or a server (http://HOST:PORT), got 'ftp://host/x' "
     "(MLflow 3 refuses a folder store unless MLFLOW_ALLOW_FILE_STORE=true)"),
])
def test_unusable_uris_are_one_line(tmp_path, uri, message):
    with pytest.raises(ValueError) as info:
        check_tracking_uri(uri.format(tmp=tmp_path))
    assert str(info.value) == message.format(tmp=tmp_path)


def test_checking_a_uri_imports_neither_mlflow_nor_tensorflow():
    code = ("import sys; from pipeline_vae.tracking import check_tracking_uri; check_tracking_uri(None); "
            "print(sorted(m for m in ('mlflow', 'tensorflow', 'wandb') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"

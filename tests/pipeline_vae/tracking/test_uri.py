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
    assert check_tracking_uri("http://10.0.0.5:5000", probe=False) == "http://10.0.0.5:5000"


def test_a_server_is_checked_before_anything_is_written(tmp_path):
    """A listening socket passes (the URI comes back unchanged); a closed port is refused in one line naming it."""
    import socket
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert check_tracking_uri(f"http://127.0.0.1:{port}") == f"http://127.0.0.1:{port}"
    with pytest.raises(ValueError, match=rf"^tracking_uri: no server answers at 127.0.0.1:{port} within 3 s "
                       r"\(Connection refused\); start it"):
        check_tracking_uri(f"http://127.0.0.1:{port}")
    with pytest.raises(ValueError, match="tracking_uri: the port of 'http://h:x' is not a number"):
        check_tracking_uri("http://h:x")


@pytest.mark.slow
def test_the_cli_refuses_a_missing_server_before_touching_the_folder(tmp_path, run_cli):
    save_dir = tmp_path / "run"
    result = run_cli(["train", "--save-dir", str(save_dir), "--track", "mlflow", "--tracking-uri",
                      "http://127.0.0.1:9", "--epochs", "1"])
    assert result.returncode == 2
    assert result.stderr.strip() == ("pipeline-vae: error: tracking_uri: no server answers at 127.0.0.1:9 within 3 s "
                                     "(Connection refused); start it (e.g. `mlflow server --port PORT`), or leave "
                                     "--tracking-uri out for the local sqlite:///mlruns.db")
    assert not save_dir.exists()


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

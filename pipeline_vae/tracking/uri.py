"""Where MLflow runs go: the tracking URI, checked without importing MLflow or TensorFlow (so a bad `--tracking-uri`
answers at once)."""
import os
import socket
from typing import Optional
from urllib.parse import urlparse

#: The default store: a SQLite file in the working directory (MLflow 3 refuses a bare `./mlruns` file store).
DEFAULT_URI = "sqlite:///mlruns.db"
DEFAULT_EXPERIMENT = "pipeline-vae"
SERVER_SCHEMES = ("http", "https", "databricks", "postgresql", "mysql", "mssql")


def check_tracking_uri(uri: Optional[str], probe: bool = True) -> str:
    """The tracking URI with a SQLite path made absolute (trials and other working directories find the same file),
    checked as far as it can be without a server.

    Args:
        uri: `sqlite:///PATH` (relative to the working directory) or `sqlite:////ABS/PATH`, a server
            (`http://HOST:PORT`, `https://...`, `databricks`, a database URL); None for `DEFAULT_URI`.
        probe: Check that a server's host answers (`check_server`), before anything is written.

    Returns:
        The URI to use.

    Raises:
        ValueError: One line naming `tracking_uri` and what was expected: an unknown scheme, a bare folder (MLflow 3's
            file store is refused unless MLFLOW_ALLOW_FILE_STORE=true), or a SQLite file whose folder is missing or
            not writable, or no server answers at a server URI's host and port within `SERVER_TIMEOUT` seconds.
    """
    uri = uri or DEFAULT_URI
    scheme = urlparse(uri).scheme
    if scheme == "sqlite":
        path = uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else ""
        if not path or path == ":memory:":
            raise ValueError(f"tracking_uri: expected sqlite:///PATH (a file), got {uri!r}")
        path = os.path.abspath(path)
        folder = os.path.dirname(path)
        if not os.path.isdir(folder):
            raise ValueError(f"tracking_uri: folder {folder} of {uri} does not exist")
        _check_writable(path, uri)
        return f"sqlite:///{path}"
    if scheme in SERVER_SCHEMES or scheme.startswith(tuple(s + "+" for s in SERVER_SCHEMES)):
        if probe:
            check_server(uri)
        return uri
    if scheme in ("", "file") and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() == "true":
        return uri
    raise ValueError(f"tracking_uri: expected sqlite:///PATH.db or a server (http://HOST:PORT), got {uri!r} (MLflow 3 "
                     "refuses a folder store unless MLFLOW_ALLOW_FILE_STORE=true)")


#: Seconds a tracking server has to accept a connection before a run starts.
SERVER_TIMEOUT = 3.0
DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306, "mssql": 1433}


def check_server(uri: str, timeout: float = SERVER_TIMEOUT) -> None:
    """Open (and close) a TCP connection to the host and port of a server URI, so that a server that is not there is
    refused at once instead of after MLflow's retries (260 s for a closed port, measured), and before the run folder
    is touched. `databricks` (a profile name, no host) is left to MLflow.

    Raises:
        ValueError: "tracking_uri: no server answers at HOST:PORT within 3 s (REASON); ...".
    """
    parsed = urlparse(uri)
    if not parsed.hostname:
        return
    base = parsed.scheme.split("+")[0]
    try:
        port = parsed.port or DEFAULT_PORTS.get(base)
    except ValueError:
        raise ValueError(f"tracking_uri: the port of {uri!r} is not a number") from None
    if port is None:
        return
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as err:
        reason = "timed out" if isinstance(err, socket.timeout) else (err.strerror or str(err))
        raise ValueError(f"tracking_uri: no server answers at {parsed.hostname}:{port} within {timeout:g} s ({reason}); "
                         "start it (e.g. `mlflow server --port PORT`), or leave --tracking-uri out for the local "
                         f"{DEFAULT_URI}") from None


def _check_writable(path: str, uri: str) -> None:
    """Open the database file for appending (created and removed again if it did not exist): the real test, also for
    root and read-only file systems, where permission bits say nothing."""
    existed = os.path.exists(path)
    try:
        with open(path, "ab"):
            pass
    except OSError as err:
        raise ValueError(f"tracking_uri: {path} cannot be written ({err.strerror}; {uri})") from None
    if not existed:
        os.remove(path)

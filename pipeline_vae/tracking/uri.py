"""Where MLflow runs go: the tracking URI, checked without importing MLflow or TensorFlow (so a bad `--tracking-uri`
answers at once)."""
import os
from typing import Optional
from urllib.parse import urlparse

#: The default store: a SQLite file in the working directory (MLflow 3 refuses a bare `./mlruns` file store).
DEFAULT_URI = "sqlite:///mlruns.db"
DEFAULT_EXPERIMENT = "pipeline-vae"
SERVER_SCHEMES = ("http", "https", "databricks", "postgresql", "mysql", "mssql")


def check_tracking_uri(uri: Optional[str]) -> str:
    """The tracking URI with a SQLite path made absolute (trials and other working directories find the same file),
    checked as far as it can be without a server.

    Args:
        uri: `sqlite:///PATH` (relative to the working directory) or `sqlite:////ABS/PATH`, a server
            (`http://HOST:PORT`, `https://...`, `databricks`, a database URL); None for `DEFAULT_URI`.

    Returns:
        The URI to use.

    Raises:
        ValueError: One line naming `tracking_uri` and what was expected: an unknown scheme, a bare folder (MLflow 3's
            file store is refused unless MLFLOW_ALLOW_FILE_STORE=true), or a SQLite file whose folder is missing or
            not writable.
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
        return uri
    if scheme in ("", "file") and os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() == "true":
        return uri
    raise ValueError(f"tracking_uri: expected sqlite:///PATH.db or a server (http://HOST:PORT), got {uri!r} (MLflow 3 "
                     "refuses a folder store unless MLFLOW_ALLOW_FILE_STORE=true)")


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

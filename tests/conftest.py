"""Shared fixtures: real MNIST from the project's cache (prepared by `make data`), quiet TensorFlow."""
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Callable, Dict, List

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow is imported anywhere in the session
# The session's own checkpoint key (pipeline_vae.signing), shared by this process and the CLI subprocesses it starts:
# the tests never create or read the user's ~/.config/pipeline-vae/checkpoint.key.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="pipeline-vae-test-config-")
atexit.register(shutil.rmtree, os.environ["XDG_CONFIG_HOME"], True)  # (removed when the session ends)

import fastestimator as fe  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from pipeline_vae.data import MNIST, default_cache_path, load_mnist  # noqa: E402

tf.get_logger().setLevel("ERROR")

#: Fixtures that train a model or start a TensorFlow subprocess: a test using one is `slow` (`make test-fast` leaves it
#: out), whether or not it says so itself.
SLOW_FIXTURES = {"trained_dir", "trained", "run_cli", "subprocess_env"}


@pytest.fixture(autouse=True)
def _environment_restored():
    """Each test leaves `os.environ` as it found it: FE's `Estimator.fit` sets TF_CPP_MIN_LOG_LEVEL=1 and
    `fe.enable_deterministic` the thread counts and TF_DETERMINISTIC_OPS, so a test that trains in this process would
    otherwise hand them to every later test's subprocesses (TensorFlow's start-up noise on a tool's one-line error)."""
    saved = dict(os.environ)
    yield
    if dict(os.environ) != saved:
        os.environ.clear()
        os.environ.update(saved)


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
fe.record_history(False)  # FE would otherwise write ~/fastestimator_data/history.db for every fit


@pytest.fixture(scope="session")
def mnist() -> MNIST:
    """The full, verified MNIST (60k/10k)."""
    return load_mnist()


@pytest.fixture(scope="session")
def mnist_path(mnist: MNIST) -> str:
    """Path of the verified MNIST cache file."""
    return default_cache_path()


@pytest.fixture(scope="session")
def small_mnist(mnist: MNIST) -> MNIST:
    """A small slice of the real data: 250 train (batches of 100 leave a partial one) and 130 test images."""
    return mnist.subset(250, 130)


@pytest.fixture
def subprocess_env(tmp_path, mnist_path) -> Dict[str, str]:
    """Environment for CLI subprocesses: a throwaway HOME and the data path given explicitly."""
    # The CLI must quiet TF itself; and a seeded test earlier in this process leaves FE's determinism variables set.
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_DETERMINISTIC_OPS",
                                                              "PYTHONHASHSEED")}
    env.update(HOME=str(tmp_path / "home"), PIPELINE_VAE_DATA=mnist_path)
    os.makedirs(env["HOME"], exist_ok=True)
    return env


@pytest.fixture
def run_cli(subprocess_env: Dict[str, str]) -> Callable[[List[str]], subprocess.CompletedProcess]:
    """Run `pipeline-vae ARGS` as a user would: the installed console script, in a subprocess."""
    exe = os.path.join(os.path.dirname(sys.executable), "pipeline-vae")

    def run(args: List[str], timeout: int = 300) -> subprocess.CompletedProcess:
        return subprocess.run([exe, *args], env=subprocess_env, capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture(scope="session")
def trained_dir(mnist, tmp_path_factory) -> str:
    """A save_dir from a short real training run: latent 2, 150 steps of batch 100 (about 5 s), seeded."""
    from pipeline_vae import get_estimator
    save_dir = str(tmp_path_factory.mktemp("trained"))
    get_estimator(epochs=1, batch_size=100, latent_dim=2, train_steps_per_epoch=150, eval_steps_per_epoch=10,
                  seed=1, save_dir=save_dir, data=mnist, log_steps=None).fit()
    return save_dir

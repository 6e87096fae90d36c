import os
import signal
import subprocess
import sys
import time

import pytest

from pipeline_vae.run_lock import LOCK_FILE, RunLock, RunLockedError


def test_a_second_holder_is_refused_with_the_owners_pid(tmp_path):
    with RunLock(str(tmp_path / "run")) as first:
        assert first.held
        with pytest.raises(RunLockedError, match=rf"run is in use by another process \(pid {os.getpid()}, lock file "):
            RunLock(str(tmp_path / "run")).acquire()
    with RunLock(str(tmp_path / "run")) as again:  # released: free again
        assert again.held and again.took_over is None


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    code = ("import sys, time; sys.path.insert(0, sys.argv[2]); from pipeline_vae.run_lock import RunLock; "
            "lock = RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path), root], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=rf"pid {child.pid}"):
            RunLock(str(tmp_path)).acquire()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert (tmp_path / LOCK_FILE).read_text().strip() == str(child.pid)  # the dead owner's file is still there
    deadline = time.time() + 5
    lock = RunLock(str(tmp_path))
    while not lock.held:
        try:
            lock.acquire()
        except RunLockedError:  # the kernel releases the dead process's lock as it reaps it
            assert time.time() < deadline
            time.sleep(0.05)
    assert lock.took_over == child.pid
    assert (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())
    lock.release()


def test_a_lock_released_by_a_finished_process_is_not_reported_as_taken_over(tmp_path):
    code = ("import sys; sys.path.insert(0, sys.argv[2]); from pipeline_vae.run_lock import RunLock; "
            "RunLock(sys.argv[1]).acquire().release()")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    subprocess.run([sys.executable, "-c", code, str(tmp_path), root], check=True, timeout=60)
    with RunLock(str(tmp_path)) as lock:
        assert lock.took_over is None  # (a rerun after a clean finish prints no "taking over" note)

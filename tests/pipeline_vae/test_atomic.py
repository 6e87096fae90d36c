import json
import os
import stat

import pytest

from pipeline_vae.atomic import atomic_path, write_json_atomic


def test_replaces_in_one_step_with_normal_permissions(tmp_path):
    target = tmp_path / "sub" / "out.json"
    write_json_atomic(str(target), {"a": 1})
    write_json_atomic(str(target), {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~mask  # not mkstemp's 0600
    assert os.listdir(target.parent) == ["out.json"]


def test_a_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(str(target)) as tmp:
            with open(tmp, "w") as file:
                file.write("half of the new")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_the_temporary_file_is_beside_the_target(tmp_path, monkeypatch):
    """The rename is atomic only within one file system: the temporary file must be in the target's own folder."""
    import pipeline_vae.atomic as atomic
    renames = []
    real = os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda src, dst: renames.append((src, dst)) or real(src, dst))
    target = tmp_path / "sub" / "out.json"
    atomic.write_json_atomic(str(target), {"a": 1})
    [(src, dst)] = renames
    assert dst == str(target) and os.path.dirname(src) == str(tmp_path / "sub")
    assert os.path.basename(src).startswith(".out.json.") and src.endswith(".tmp")

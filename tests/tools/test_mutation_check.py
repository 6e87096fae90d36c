"""The mutation check keeps itself honest: every mutation still applies, and one that does not is stale, not missed."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import mutation_check  # noqa: E402  (a script in tools/, not a package)
from mutation_check import CAUGHT, MISSED, MUTATIONS, ROOT, STALE, classify, import_problem  # noqa: E402


@pytest.mark.parametrize("m", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_every_mutation_applies_and_compiles(m):
    """Its text occurs exactly once and the mutated file still compiles (the tool itself also imports it), and its
    tests exist: else it would test nothing."""
    with open(os.path.join(ROOT, m.path)) as file:
        source = file.read()
    assert source.count(m.old) == 1, f"{m.name}: stale text in {m.path}"
    assert m.old != m.new
    if m.path.endswith(".py"):
        compile(source.replace(m.old, m.new), m.path, "exec")
    for test in m.tests:
        assert os.path.exists(os.path.join(ROOT, test.split("::")[0])), f"{m.name}: no test {test}"


def test_a_mutation_whose_copy_does_not_import_is_stale(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text("def f():\n    try:\n        pass\n")  # a try: without except
    problem = import_problem("pkg/mod.py", str(tmp_path), {**os.environ, "PYTHONPATH": str(tmp_path)})
    assert problem is not None and "SyntaxError" in problem
    (tmp_path / "script.py").write_text("x = (\n")
    assert "SyntaxError" in import_problem("script.py", str(tmp_path), dict(os.environ))
    (tmp_path / "script.py").write_text("x = 1\n")
    assert import_problem("script.py", str(tmp_path), dict(os.environ)) is None


@pytest.mark.parametrize("code, failed, verdict", [(1, ["t::a"], CAUGHT), (0, [], MISSED), (1, [], MISSED),
                                                   (2, [], STALE), (4, [], STALE), (5, [], MISSED)])
def test_verdicts(code, failed, verdict):
    """Only a failing test catches; pytest unable to run the tests (exit 2-4) is stale; no tests (5) is a miss."""
    assert classify(code, failed) == verdict


def test_a_stale_mutation_fails_the_check(monkeypatch, tmp_path, capsys):
    """The whole tool, on one mutation whose text no longer occurs: reported stale, exit 1, no pytest run needed."""
    gone = mutation_check.Mutation("gone", "text that is no longer there", "pipeline_vae/atomic.py",
                                   "this text is not in the file", "x", ("tests/pipeline_vae/test_atomic.py", ))
    monkeypatch.setattr(mutation_check, "MUTATIONS", (gone, ))
    monkeypatch.setattr(mutation_check, "pytest", lambda *a, **k: (0, [], 0.0, ""))  # the baseline (nothing to run)
    report = tmp_path / "report.md"
    assert mutation_check.main(["--report", str(report)]) == 1
    out = capsys.readouterr().out
    assert "gone: STALE (its text occurs 0 times in pipeline_vae/atomic.py" in out
    assert "0 of 1 mutations caught; stale (no longer apply; update them): gone" in out
    assert "| `gone` | `pipeline_vae/atomic.py` | text that is no longer there | **stale** | - |" in report.read_text()

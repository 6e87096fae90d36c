"""The docs run: every `bash` and `python` block of README.md, docs/usage.md and docs/own-data.md is executed as a user
would type it, at a tiny budget (`PIPELINE_VAE_TINY=1`, see `pipeline_vae.resolve`), so a snippet that breaks turns
the suite red.

Each document gets a fresh folder holding what its commands expect beside them (links to the checkout's `.venv`,
`Makefile`, `apphub/` and `tools/`), and its blocks run there in order: a bash block line by line (`bash -c`, with
`.venv/bin` first on PATH, so `pipeline-vae`, `python` and `.venv/bin/...` are the project's), a Python block as a
script of its own in a fresh interpreter (so it must define what it uses). A block that cannot run here starts with
`# not run by the test suite: REASON`; the reason is shown in the document itself.
"""
import os
import re
import subprocess
import sys
from typing import Dict, Iterator, List, Tuple

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = ("README.md", "docs/usage.md", "docs/own-data.md")
RUN_LANGUAGES = ("bash", "python")
NOT_RUN = "# not run by the test suite:"
#: What a document's commands expect to find beside them (a user's checkout).
LINKED = (".venv", "Makefile", "setup.cfg", "pyproject.toml", "apphub", "tools")


def blocks(path: str) -> Iterator[Tuple[int, str, str]]:
    """(line number of the opening fence, language, text) of every fenced block of a markdown file."""
    with open(path, encoding="utf-8") as file:
        lines = file.read().splitlines()
    start, language, body = None, "", []
    for number, line in enumerate(lines, 1):
        fence = re.match(r"^```\s*(\S*)", line)
        if fence and start is None:
            start, language, body = number, fence.group(1), []
        elif fence:
            yield start, language, "\n".join(body)
            start = None
        elif start is not None:
            body.append(line)


def commands(text: str) -> List[str]:
    """The commands of a bash block: its lines, continuation lines joined, blank and comment lines left out."""
    out, pending = [], ""
    for line in text.splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line = pending + line
        pending = ""
        if line.strip() and not line.strip().startswith("#"):
            out.append(line)
    return out


def test_every_runnable_block_is_run_or_says_why_not():
    """A block in bash or python either runs or is marked with a reason; nothing is skipped silently."""
    found = 0
    for doc in DOCS:
        for line, language, text in blocks(os.path.join(ROOT, doc)):
            if language not in RUN_LANGUAGES:
                continue
            found += 1
            first = text.strip().splitlines()[0] if text.strip() else ""
            if first.startswith(NOT_RUN):
                assert len(first) > len(NOT_RUN) + 10, f"{doc}:{line}: say why the block is not run"
    assert found >= 15  # the parser found the blocks (README, usage and own-data hold more than this)


def test_the_parser_reads_fences_and_continuations(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("text\n```bash\na --x \\\n  --y   # note\n# comment\n\nb\n```\n"
                   "```python\nprint(1)\n```\n```\nout\n```\n")
    assert [(language, text) for _, language, text in blocks(str(doc))] == [
        ("bash", "a --x \\\n  --y   # note\n# comment\n\nb"), ("python", "print(1)"), ("", "out")]
    assert commands("a --x \\\n  --y   # note\n# comment\n\nb") == ["a --x    --y   # note", "b"]


def sandbox(folder: str, subprocess_env: Dict[str, str]) -> Dict[str, str]:
    """Make `folder` a checkout as the docs' commands expect it; returns their environment (a HOME and TMPDIR of its
    own, the tiny budget, `.venv/bin` first on PATH)."""
    os.makedirs(os.path.join(folder, "home"))
    os.makedirs(os.path.join(folder, "tmp"))
    for name in LINKED:  # (.venv: this interpreter's, also when the suite runs in a copy of the checkout)
        os.symlink(sys.prefix if name == ".venv" else os.path.join(ROOT, name), os.path.join(folder, name))
    env = dict(subprocess_env, HOME=os.path.join(folder, "home"), TMPDIR=os.path.join(folder, "tmp"),
               PIPELINE_VAE_TINY="1", WANDB_MODE="offline",
               PATH=os.path.join(sys.prefix, "bin") + os.pathsep + subprocess_env.get("PATH", ""))
    env.pop("MAKEFLAGS", None)
    return env


def run_doc(doc: str, folder: str, env: Dict[str, str]) -> Tuple[int, List[str]]:
    """Run the blocks of `doc` in order in `folder`; returns how many steps ran and the failures, one text each."""
    failures, ran = [], 0
    for line, language, text in blocks(os.path.join(ROOT, doc)):
        if language not in RUN_LANGUAGES or text.strip().startswith(NOT_RUN):
            continue
        if language == "python":
            script = os.path.join(folder, f"block_{line}.py")
            with open(script, "w") as file:
                file.write(text + "\n")
            steps = [[sys.executable, script]]
        else:
            steps = [["bash", "-c", command] for command in commands(text)]
        for step in steps:
            ran += 1
            result = subprocess.run(step, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
            if result.returncode != 0 or "Traceback" in result.stderr:
                failures.append(f"{doc}:{line}: {step[-1][:200]!r} exited {result.returncode}: "
                                f"{(result.stderr or result.stdout).strip()[-1500:]}")
    return ran, failures


@pytest.mark.slow
def test_every_block_of_the_docs_runs(tmp_path, subprocess_env):
    """The three documents at once (each in its own folder, blocks in order): most of the time is interpreters
    starting and importing TensorFlow, which two cores do side by side."""
    from concurrent.futures import ThreadPoolExecutor
    folders = [str(tmp_path / f"doc{i}") for i in range(len(DOCS))]
    envs = [sandbox(folder, subprocess_env) for folder in folders]
    with ThreadPoolExecutor(len(DOCS)) as pool:
        results = list(pool.map(run_doc, DOCS, folders, envs))
    for doc, (ran, _) in zip(DOCS, results):
        assert ran >= 4, f"{doc}: only {ran} commands or blocks ran"
    failures = [failure for _, found in results for failure in found]
    assert not failures, "\n\n".join(failures)

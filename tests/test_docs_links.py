"""Every relative link in the README and docs points at a file the repository tracks.

A link to a file that exists only on the machine that wrote the docs (an ignored run folder, say) passes a check on
that machine and breaks for every reader of a fresh clone; so, in a git checkout, the target must be tracked by git,
not merely present on disk.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import List, Optional, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _documents() -> List[Path]:
    docs = [ROOT / "README.md"]
    for folder in ("docs", "benchmarks", "apphub"):
        docs.extend(sorted((ROOT / folder).rglob("*.md")))
    return [doc for doc in docs if doc.is_file()]


def _tracked() -> Optional[Set[str]]:
    """The repository's tracked files (posix paths from the root), or None outside a git checkout."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return None
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return {name for name in listing.decode().split("\0") if name}


def _relative_links(doc: Path) -> List[Tuple[str, str]]:
    """(link as written, target relative to the root) for each relative link of one document."""
    links = []
    for match in LINK.finditer(doc.read_text(encoding="utf-8")):
        written = match.group(1)
        target = written.split("#", 1)[0]
        if not target or re.match(r"^[a-z][a-z0-9+.-]*:", target):  # an anchor in the same page, or a URL
            continue
        resolved = os.path.normpath(os.path.join(os.path.relpath(doc.parent, ROOT), target))
        links.append((written, Path(resolved).as_posix()))
    return links


def _is_tracked(target: str, tracked: Set[str]) -> bool:
    return target in tracked or any(name.startswith(target.rstrip("/") + "/") for name in tracked)


def test_the_documents_have_links_to_check():
    # Guards the check below against passing on nothing (a moved docs folder, a broken pattern).
    assert len(_documents()) >= 8
    assert sum(len(_relative_links(doc)) for doc in _documents()) >= 50


@pytest.mark.parametrize("doc", _documents(), ids=lambda doc: doc.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves_to_a_tracked_file(doc):
    tracked = _tracked()
    broken = []
    for written, target in _relative_links(doc):
        if target.startswith(".."):
            broken.append(f"{written} (outside the repository)")
        elif tracked is not None and not _is_tracked(target, tracked):
            broken.append(f"{written} ({target} is not tracked by git)")
        elif tracked is None and not (ROOT / target).exists():
            broken.append(f"{written} ({target} does not exist)")
    assert not broken, f"{doc.relative_to(ROOT)} links to: " + "; ".join(broken)

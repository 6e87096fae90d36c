"""The numbers the literature runs' write-ups and table quote are the numbers their committed records and logs hold.

Each `docs/runs/literature_*/README.md` describes one variant's trials, a section per seed (the text before the first
"## Seed N" heading is seed 0's unless a "## Seed 0" heading exists), beside the trial's record
(`result_seedN.json`) and training log (`train_log_seedN.csv`). Within a seed's section the test reads:

- "IW bound K = 5000: -X ± S nats**" and the ELBO, KL and active units after it, against the record;
- "N of 300 (validation ELBO -V)", the best epoch and its validation ELBO, against the log's `elbo` column;
- "by epoch 100: a, 200: b, 250: c[, 300: d]", the best validation ELBO up to each of those epochs, against the log.

The best epoch and the running best are computed here from the log's raw `elbo` column, not read from the columns
the trace wrote beside it (`max_elbo`, `since_best_elbo`). The literature table in docs/ablations/README.md, the
README's line on the literature's protocol and a write-up's three-seed summary are checked against the published
records' mean ± sample sd over seeds.
"""
import csv
import json
import re
import statistics
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN_DIRS = sorted({record.parent for record in (ROOT / "docs" / "runs").glob("literature_*/result_seed*.json")})

NUMBER = r"(-?\d+\.\d+)"
IW = re.compile(r"IW bound K = 5000: " + NUMBER + r" ± (\d+\.\d+) nats\*\*")
ELBO = re.compile(r"ELBO " + NUMBER)
KL = re.compile(r"KL " + NUMBER)
ACTIVE = re.compile(r"(\d+) of (?:50 active units|100 z1 units active)")
BEST = re.compile(r"(\d+) of 300 \(validation ELBO " + NUMBER + r"[;)]")
BY_EPOCH = re.compile(r"by epoch 100: " + NUMBER + r", 200: " + NUMBER + r", 250: " + NUMBER + r"(?:, 300: " + NUMBER
                      + r")?")


def _sections(text: str) -> Dict[int, str]:
    """Each seed's section of a write-up, by seed, with its line breaks and indents as single spaces."""
    parts = [" ".join(part.split()) for part in re.split(r"^## Seed (\d+)\s*$", text, flags=re.MULTILINE)]
    sections = {int(seed): body for seed, body in zip(parts[1::2], parts[2::2])}
    if 0 not in sections:
        sections[0] = parts[0]
    return sections


def _validation_elbo(log: Path) -> Dict[int, float]:
    """Epoch -> validation ELBO, from the eval rows of a training log."""
    with log.open(newline="") as handle:
        return {int(row["epoch"]): float(row["elbo"]) for row in csv.DictReader(handle)
                if row["mode"] == "eval" and row.get("elbo")}


def _same(quoted: str, value: float) -> bool:
    """Whether a number quoted with its decimals is `value` rounded to those decimals."""
    decimals = len(quoted.split(".")[1])
    return abs(float(quoted) - value) <= 0.5 * 10**-decimals + 1e-9


def _seeds() -> List[Tuple[Path, int]]:
    return [(folder, int(record.stem.rsplit("seed", 1)[1])) for folder in RUN_DIRS
            for record in sorted(folder.glob("result_seed*.json"))]


def _seed_id(value: object) -> str:
    return value.name if isinstance(value, Path) else str(value)


@pytest.mark.parametrize("folder,seed", _seeds(), ids=_seed_id)
def test_a_seeds_quoted_numbers_match_its_record_and_log(folder: Path, seed: int) -> None:
    sections = _sections((folder / "README.md").read_text(encoding="utf-8"))
    assert seed in sections, f"{folder.name}: no section for seed {seed}"
    section = sections[seed]
    record = json.loads((folder / f"result_seed{seed}.json").read_text())
    elbo = _validation_elbo(folder / f"train_log_seed{seed}.csv")

    bounds = list(IW.finditer(section))
    assert len(bounds) == 1, f"{folder.name} seed {seed}: expected one quoted IW bound, found {len(bounds)}"
    assert _same(bounds[0].group(1), record["iw_bound"]), (bounds[0].group(1), record["iw_bound"])
    assert _same(bounds[0].group(2), record["iw_bound_se"]), (bounds[0].group(2), record["iw_bound_se"])
    after = section[bounds[0].end():bounds[0].end() + 200]
    assert _same(ELBO.search(after).group(1), record["elbo_analytic"])
    assert _same(KL.search(after).group(1), record["kl"])
    assert int(ACTIVE.search(after).group(1)) == record["active_units"]

    best = BEST.findall(section)
    assert len(best) == 1, f"{folder.name} seed {seed}: expected one 'N of 300 (validation ELBO -V)', found {best}"
    best_epoch = max(elbo, key=lambda epoch: (elbo[epoch], -epoch))  # the first epoch to reach the maximum
    assert int(best[0][0]) == best_epoch, (best[0], best_epoch)
    assert _same(best[0][1], elbo[best_epoch])

    for quoted in BY_EPOCH.findall(section):
        for epoch, value in zip((100, 200, 250, 300), quoted):
            if value:
                running_best = max(elbo[e] for e in elbo if e <= epoch)
                assert _same(value, running_best), (folder.name, seed, epoch, value, running_best)


def test_the_write_ups_quote_the_running_best_of_every_seed() -> None:
    """Every seed's section quotes the best validation ELBO by epochs 100, 200 and 250, so the check above bites."""
    assert _seeds(), "no literature records under docs/runs"
    missing = [(folder.name, seed) for folder, seed in _seeds()
               if not BY_EPOCH.search(_sections((folder / "README.md").read_text(encoding="utf-8"))[seed])]
    assert not missing, missing


ABLATIONS = ROOT / "docs" / "ablations"
#: The literature table's rows in docs/ablations/README.md, by the variant names of apphub/ablations/literature.yaml.
TABLE_ROWS = {"VAE, one stochastic layer": "vae", "IWAE k=5": "iwae5", "IWAE k=50": "iwae50",
              "two stochastic layers (VAE)": "two_layers", "VampPrior, 500 pseudo-inputs": "vamp",
              "planar flow, 10 steps": "planar10"}


def test_the_literature_table_is_the_published_records_over_seeds() -> None:
    """docs/ablations/README.md's table beside the papers: each row's mean ± sample sd of the IW bound over seeds (or
    the one seed's bound), its number of seeds and its gap to the paper are those of docs/ablations/literature's
    records, and the bold row is the best."""
    runs = json.loads((ABLATIONS / "literature" / "results.json").read_text())["runs"]
    bounds: Dict[str, List[Tuple[int, float]]] = {}
    for run in runs:
        bounds.setdefault(run["variant"], []).append((run["seed"], run["iw_bound"]))
    text = (ABLATIONS / "README.md").read_text(encoding="utf-8")
    table = text.split("| variant | ours: IW bound K=5000", 1)[1].split("\n\n", 1)[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    assert sorted(row[0] for row in rows) == sorted(TABLE_ROWS)
    means = {}
    for label, ours, seeds, paper, gap in rows:
        values = [bound for _, bound in sorted(bounds[TABLE_ROWS[label]])]
        assert int(seeds) == len(values), (label, seeds, len(values))
        mean = means[label] = statistics.fmean(values)
        if len(values) == 1:
            assert ours.strip("*") == f"{values[0]:.2f} (seed {sorted(bounds[TABLE_ROWS[label]])[0][0]})", (label, ours)
        else:
            quoted_mean, quoted_sd = ours.strip("*").split(" ± ")
            assert _same(quoted_mean, mean) and _same(quoted_sd, statistics.stdev(values)), (label, ours, values)
        if gap:
            assert _same(gap, -mean - float(re.match(r"\d+\.\d+", paper).group(0))), (label, gap, mean, paper)
    bold = [label for label, ours, *_ in rows if ours.startswith("**")]
    assert bold == [max(means, key=means.get)], (bold, means)


#: How the README's line on the literature's protocol names each variant of apphub/ablations/literature.yaml.
README_NAMES = {"one-layer VAE": "vae", "IWAE k=5": "iwae5", "k=50": "iwae50", "VampPrior": "vamp",
                "planar flow": "planar10", "two layers": "two_layers"}


def test_the_readme_and_the_three_seed_summaries_quote_the_records_over_seeds() -> None:
    """The README's line on the literature's protocol, and a write-up's "**-X ± S nats** (mean ± sample sd" summary,
    quote each variant's mean ± sample sd of the IW bound over docs/ablations/literature's records."""
    bounds: Dict[str, List[float]] = {}
    for run in json.loads((ABLATIONS / "literature" / "results.json").read_text())["runs"]:
        bounds.setdefault(run["variant"], []).append(run["iw_bound"])
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    line = readme.split("Under the literature's protocol", 1)[1].split("docs/ablations/", 1)[0]
    quoted = {name: re.search(re.escape(name) + r" " + NUMBER + r" ± (\d+\.\d+)", line) for name in README_NAMES}
    assert all(quoted.values()), quoted
    summaries = [(folder.name.split("_", 1)[1], match) for folder in RUN_DIRS
                 for match in re.finditer(r"\*\*" + NUMBER + r" ± (\d+\.\d+) nats\*\* \(mean ± sample sd",
                                          " ".join((folder / "README.md").read_text(encoding="utf-8").split()))]
    assert summaries
    for variant, match in [(README_NAMES[name], match) for name, match in quoted.items()] + summaries:
        values = bounds[variant]
        assert _same(match.group(1), statistics.fmean(values)), (variant, match.group(0), values)
        assert _same(match.group(2), statistics.stdev(values)), (variant, match.group(0), values)

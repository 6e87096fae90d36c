import csv
import json
import math
import os

import numpy as np
from PIL import Image

from pipeline_vae.ablation.report import markdown_table, provenance, summarize, write_reports
from pipeline_vae.ablation.spec import parse_spec

SPEC_TEXT = """\
name: demo
baseline: b
seeds: [0, 1]
budget: {epochs: 1}
eval: {iw_samples: 50}
variants:
  - name: a
    description: first
  - name: b
  - name: c
"""
SPEC = parse_spec(SPEC_TEXT, "demo.yaml")


def _rows():
    values = {("a", 0): -100.0, ("a", 1): -102.0, ("b", 0): -98.0, ("b", 1): -99.0, ("c", 0): -110.0, ("c", 1): -90.0}
    return [{"variant": v, "seed": s, "iw_bound": iw, "elbo_analytic": iw - 5, "reconstruction": iw - 1, "kl": 4.0,
             "active_units": 2, "train_seconds": 10.0 + s} for (v, s), iw in values.items()]


def test_summary_means_sample_sds_deltas_and_ranking():
    summary = summarize(SPEC, _rows())
    assert [e["variant"] for e in summary] == ["b", "c", "a"]  # by mean IW: -98.5, -100, -101
    a = next(e for e in summary if e["variant"] == "a")
    assert a["iw_bound_mean"] == -101.0 and math.isclose(a["iw_bound_sd"], math.sqrt(2.0))
    assert math.isclose(a["delta_iw_bound"], -2.5) and math.isclose(a["delta_elbo_analytic"], -2.5)
    assert summary[0]["baseline"] and summary[0]["delta_iw_bound"] == 0.0
    one_seed = summarize(SPEC, [r for r in _rows() if r["seed"] == 0])
    assert all(math.isnan(e["iw_bound_sd"]) for e in one_seed)


def test_markdown_marks_the_baseline_and_states_how_it_was_made():
    text = markdown_table(SPEC, summarize(SPEC, _rows()), command="pipeline-vae ablate demo.yaml")
    lines = text.splitlines()
    assert "seeds [0, 1], 1 epoch(s) each" in lines[0] and "IW bound (K=50)" in lines[0]
    assert "Command: `pipeline-vae ablate demo.yaml`" in text
    table = [line for line in lines if line.startswith("| ")]
    assert table[0].startswith("| variant | IW bound K=50 | Δ IW |")
    assert table[1].startswith("| **b** (baseline) | -98.50 ± 0.71 | – |")
    assert table[3].startswith("| a | -101.00 ± 1.41 | -2.50 |")
    assert "- `a`: first" in lines


def test_provenance_names_the_code_and_sums_the_compute():
    rows = _rows()
    for i, row in enumerate(rows):
        row.update(commit="abc" if i < 4 else "def+dirty", host="h1", eval_seconds=360.0)
    rows[0].pop("commit")
    rows[3]["attempts"], rows[4]["attempts"] = 2, 1  # b seed 1 resumed once; c seed 0 ran in one attempt
    # training 10 s (seed 0) or 11 s (seed 1), three of each: 63 s; evaluation 6 x 360 s = 0.6 h
    assert provenance(rows) == {"commits": ["unknown", "abc", "def+dirty"], "hosts": ["h1"],
                                "train_hours": round(63 / 3600, 2), "eval_hours": 0.6, "resumed": ["b seed 1"]}
    text = markdown_table(SPEC, summarize(SPEC, rows), command="cmd", rows=rows)
    assert "Code: `unknown`, `abc`, `def+dirty`. Hosts: h1 (this report: " in text
    assert f"{os.cpu_count()} CPUs" in text and "6 trials: 0.02 h of training and 0.6 h of evaluation" in text
    assert "Resumed after an interruption: b seed 1. train s: the time `fit` took in the trial's last attempt." in text
    assert "Resumed" not in markdown_table(SPEC, summarize(SPEC, _rows()), command="cmd", rows=_rows())
    # Records that carry every epoch's training time (`train_epoch_seconds`) are summed and shown by it instead
    for i, row in enumerate(rows):
        row["train_epoch_seconds"] = 100.0 * (i + 1)  # a: 100, 200; b: 300, 400; c: 500, 600
    assert provenance(rows)["train_hours"] == round(2100 / 3600, 2)
    text = markdown_table(SPEC, summarize(SPEC, rows), command="cmd", rows=rows)
    assert "train s: FE's training time of every epoch, summed over the attempts" in text
    # The code that trained a resumed trial is named too, not only the code that evaluated it
    rows[3]["train_commits"] = ["old", "abc"]
    rows[4]["train_commits"] = ["unknown"]  # an attempt started before attempts noted their commit
    assert provenance(rows)["commits"] == ["old", "abc", "unknown", "def+dirty"]
    table = {line.split(" | ")[0]: line.split(" | ")[-1] for line in text.splitlines() if line.startswith("| ")}
    assert (table["| a"], table["| **b** (baseline)"], table["| c"]) == ("150 ± 71 |", "350 ± 71 |", "550 ± 71 |")


def test_write_reports_makes_all_four_files(tmp_path):
    paths = write_reports(SPEC, _rows(), str(tmp_path), command="cmd")
    with open(paths["csv"]) as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 6 and rows[0]["variant"] == "a" and float(rows[0]["iw_bound"]) == -100.0
    with open(paths["json"]) as file:
        data = json.loads(file.read(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))  # strict JSON
    assert data["command"] == "cmd" and len(data["runs"]) == 6 and data["spec"]["name"] == "demo"
    assert [e["variant"] for e in data["summary"]] == ["b", "c", "a"]
    assert data["provenance"]["commits"] == ["unknown"] and data["provenance"]["train_hours"] == round(63 / 3600, 2)
    image = np.asarray(Image.open(paths["png"]).convert("L"))
    assert image.shape[1] == 1000 and image.std() > 10  # two panels, not blank
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.json", "results.md", "results.png"]


def test_the_bits_per_dim_column_holds_the_bounds_bits_per_dim():
    """bits/dim = -bound / (D ln 2) for each run, computed here; the column shows its mean and sd over seeds."""
    rows = _rows()
    for row in rows:
        row["iw_bound_bpd"] = -row["iw_bound"] / (784 * math.log(2))
        row["elbo_bpd"] = -row["elbo_analytic"] / (784 * math.log(2))
    table = [line.split(" | ") for line in markdown_table(SPEC, summarize(SPEC, rows)).splitlines()
             if line.startswith("| ")]
    assert table[0][7] == "bits/dim"
    b = [-v / (784 * math.log(2)) for v in (-98.0, -99.0)]
    assert table[1][0] == "| **b** (baseline)"
    assert table[1][7] == f"{np.mean(b):.3f} ± {np.std(b, ddof=1):.3f}"


def test_without_an_iw_bound_the_best_elbo_comes_first():
    spec = parse_spec("""\
name: demo
baseline: b
seeds: [0, 1]
budget: {epochs: 1}
eval: {iw_samples: 0}
variants:
  - name: a
  - name: b
  - name: c
""", "demo.yaml")
    summary = summarize(spec, _rows())
    # mean ELBO (iw - 5): b -103.5, c -105, a -106: the highest (best) first
    assert [e["variant"] for e in summary] == ["b", "c", "a"]
    assert [e["elbo_analytic_mean"] for e in summary] == [-103.5, -105.0, -106.0]


def test_the_caption_says_how_the_test_images_were_binarized():
    seed = markdown_table(SPEC, summarize(SPEC, _rows())).splitlines()[0]
    assert "MNIST test images (statically binarized at 0.5 for the Bernoulli variants)" in seed
    protocol = parse_spec(SPEC_TEXT.replace("eval: {iw_samples: 50}",
                                            "eval: {iw_samples: 50}\nbase: {protocol: dynamic_mnist}"), "demo.yaml")
    caption = markdown_table(protocol, summarize(protocol, _rows())).splitlines()[0]
    assert "MNIST test images (binarized once by the seeded Bernoulli draw of protocol dynamic_mnist)" in caption
    assert "0.5" not in caption
    mixed = parse_spec(SPEC_TEXT.replace("  - name: c\n", "  - name: c\n    set: {protocol: dynamic_mnist}\n"),
                       "demo.yaml")
    caption = markdown_table(mixed, summarize(mixed, _rows())).splitlines()[0]
    assert "at 0.5 for the Bernoulli variants under the seed's protocol, binarized once by the seeded" in caption

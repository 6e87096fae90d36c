import json
import os

import pytest

from pipeline_vae.ablation.publish import finished_rows, publish, restore
from pipeline_vae.ablation.runner import SPEC_FILE
from pipeline_vae.ablation.spec import parse_spec
from pipeline_vae.ablation.trial import RECORD_FILE, TRIAL_FILE, read_record, trials_of

SPEC_TEXT = """\
name: demo
baseline: a
seeds: [0, 1]
budget: {epochs: 1}
eval: {iw_samples: 10, n_images: 10}
variants:
  - name: a
  - name: b
    ops: {loss: {op: BetaVAELoss, args: {beta: 2.0}}}
"""
SPEC = parse_spec(SPEC_TEXT, "demo.yaml")


def _record(trial, iw):
    return {"key": trial.key, "variant": trial.variant, "seed": trial.seed, "iw_bound": iw, "elbo_analytic": iw - 4,
            "reconstruction": iw - 1, "kl": 3.0, "active_units": 2, "train_seconds": 60.0, "eval_seconds": 30.0,
            "commit": "c0ffee"}


def _out_with_records(out, records):
    """An OUT folder as `ablate` leaves it: spec.json, and per finished trial its trial.json and result.json."""
    os.makedirs(out)
    with open(os.path.join(out, SPEC_FILE), "w") as file:
        json.dump(SPEC.to_json(), file)
    for trial, record in records:
        os.makedirs(trial.folder(out))
        for name, content in ((TRIAL_FILE, trial.to_json()), (RECORD_FILE, record)):
            with open(os.path.join(trial.folder(out), name), "w") as file:
                json.dump(content, file)


def test_publish_writes_the_finished_trials_and_restore_brings_them_back(tmp_path):
    a0, a1, b0, b1 = trials_of(SPEC)
    stale = dict(_record(b1, -90.0), key="b@0000000000")  # a record of an older definition of b
    out, dest, fresh = str(tmp_path / "out"), str(tmp_path / "docs"), str(tmp_path / "fresh")
    _out_with_records(out, [(a0, _record(a0, -100.0)), (a1, _record(a1, -102.0)), (b0, _record(b0, -99.0)),
                            (b1, stale)])

    assert publish(SPEC, out, dest, command="pipeline-vae ablate demo.yaml") == 3
    with open(os.path.join(dest, "results.json")) as file:
        published = json.load(file)
    assert [(r["variant"], r["seed"]) for r in published["runs"]] == [("a", 0), ("a", 1), ("b", 0)]
    with open(os.path.join(dest, "results.md")) as file:
        text = file.read()
    assert "**Partial: 3 of 4 trials finished so far.**" in text and "| **a** (baseline) | -101.00 ± 1.41 |" in text

    assert restore(SPEC, dest, fresh) == 3
    assert [read_record(t.folder(fresh), t.key) is not None for t in (a0, a1, b0, b1)] == [True, True, True, False]
    assert read_record(a1.folder(fresh), a1.key)["iw_bound"] == -102.0
    assert [(r["variant"], r["seed"]) for r in finished_rows(SPEC, fresh)] == [("a", 0), ("a", 1), ("b", 0)]
    assert restore(SPEC, dest, fresh) == 0  # nothing overwritten
    # b edited since it was published: its records no longer belong to it, a's still do
    edited = parse_spec(SPEC_TEXT.replace("beta: 2.0", "beta: 4.0"), "demo.yaml")
    assert restore(edited, dest, str(tmp_path / "fresh2")) == 2
    assert [(r["variant"], r["seed"]) for r in finished_rows(edited, str(tmp_path / "fresh2"))] == [("a", 0), ("a", 1)]


def test_restore_refuses_another_specs_results_and_publish_an_empty_out(tmp_path):
    other = parse_spec("name: other\nseeds: [0]\nbudget: {epochs: 1}\nvariants:\n  - name: a\n", "other.yaml")
    a0 = trials_of(SPEC)[0]
    out, dest = str(tmp_path / "out"), str(tmp_path / "docs")
    _out_with_records(out, [(a0, _record(a0, -100.0))])
    publish(SPEC, out, dest)
    with pytest.raises(ValueError, match="holds spec 'demo', not 'other'"):
        restore(other, dest, str(tmp_path / "fresh"))
    with pytest.raises(ValueError, match="cannot read"):
        restore(SPEC, str(tmp_path / "nowhere"), str(tmp_path / "fresh"))
    with pytest.raises(ValueError, match="holds the results of spec 'demo'"):
        publish(other, out, str(tmp_path / "docs2"))
    with pytest.raises(ValueError, match="is not a folder"):
        publish(SPEC, str(tmp_path / "missing"), str(tmp_path / "docs3"))

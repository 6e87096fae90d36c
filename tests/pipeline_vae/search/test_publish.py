"""Publishing a search (`pipeline_vae.search.publish`, `tools/publish_search.py`): JSON and reports only, and a
restore into a fresh OUT that gives back every trial with its state and numbers, so a rerun trains none of them."""
import json
import os
import subprocess
import sys

import pytest
import yaml

from pipeline_vae.ablation.trial import RECORD_FILE, TRIAL_FILE
from pipeline_vae.atomic import write_json_atomic
from pipeline_vae.search.publish import publish, restore
from pipeline_vae.search.runner import SEARCH_FILE, known_trials, params_path, stopped_path, trial_of
from pipeline_vae.search.spec import parse_search
from tests.pipeline_vae.search.test_spec import GOOD

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TRIALS = [  # (values, state, best ELBO): made up, as a search's driver would have left them
    ({"learning_rate": 0.003, "loss.beta": 1.5, "latent_dim": 4, "widths": [64, 32]}, "finished", -101.5),
    ({"learning_rate": 0.001, "loss.beta": 0.7, "latent_dim": 2, "widths": [32]}, "finished", -98.25),
    ({"learning_rate": 0.0001, "loss.beta": 1.9, "latent_dim": 2, "widths": [32]}, "stopped", -150.0),
    ({"learning_rate": 0.002, "loss.beta": 1.1, "latent_dim": 4, "widths": [32]}, "interrupted", None),
]


def _search_out(path, search):
    """An OUT folder as `run_search` leaves it: values in trials/, records in the run folders, stopped ELBOs."""
    os.makedirs(os.path.join(path, "trials"))
    write_json_atomic(os.path.join(path, SEARCH_FILE), search.to_json())
    for i, (params, state, elbo) in enumerate(TRIALS):
        trial = trial_of(search, params)
        write_json_atomic(params_path(str(path), trial), {"params": params, "trial": trial.to_json()})
        os.utime(params_path(str(path), trial), (1_000_000 + i, 1_000_000 + i))
        folder = trial.folder(str(path))
        os.makedirs(folder)
        if state == "finished":
            write_json_atomic(os.path.join(folder, TRIAL_FILE), trial.to_json())
            write_json_atomic(os.path.join(folder, RECORD_FILE), {"key": trial.key, "epochs": 2, "iw_bound": None,
                                                                   "best_logged_elbo": elbo, "train_seconds": 3.0})
            with open(os.path.join(folder, "encoder_best_loss.h5"), "wb") as file:
                file.write(b"weights")
        elif state == "stopped":
            write_json_atomic(stopped_path(str(path), trial), {"key": trial.key, "epochs": 1, "best_elbo": elbo,
                                                               "elbo_per_epoch": [elbo]})


def _summary(search, out):
    return sorted((k["trial"].variant, k["state"], (k["record"] or k["stopped"] or {}).get("best_logged_elbo"),
                   (k["stopped"] or {}).get("best_elbo"), k["started"]) for k in known_trials(search, str(out)))


def test_a_published_search_restores_every_trial_with_its_state_numbers_and_order(tmp_path):
    search = parse_search(GOOD, "good.yaml", check_runs=False)
    out, dest, fresh = tmp_path / "out", tmp_path / "published", tmp_path / "fresh"
    _search_out(out, search)
    assert publish(search, str(out), str(dest)) == 3  # the interrupted trial is not a result yet
    published = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert all(name.endswith((".json", ".md", ".csv", ".png", ".yaml")) for name in published), published
    rows = json.loads((dest / "results.json").read_text())["trials"]
    assert [r["objective"] for r in rows] == [-98.25, -101.5, -150.0]  # finished best first, then the stopped one
    assert json.loads((dest / "best.json").read_text())["params"] == TRIALS[1][0]
    best = yaml.safe_load((dest / "best.yaml").read_text())  # re-run on seeds other than the search's own (3)
    assert best["seeds"] == [4, 5, 6] and best["base"]["learning_rate"] == 0.001
    assert restore(search, str(dest), str(fresh)) == 3
    assert _summary(search, fresh) == [s for s in _summary(search, out) if s[1] != "interrupted"]
    assert restore(search, str(dest), str(fresh)) == 0  # nothing twice


def test_restore_skips_a_trial_whose_definition_changed_and_refuses_another_search(tmp_path):
    search = parse_search(GOOD, "good.yaml", check_runs=False)
    out, dest = tmp_path / "out", tmp_path / "published"
    _search_out(out, search)
    publish(search, str(out), str(dest))
    longer = parse_search(GOOD.replace("epochs: 2", "epochs: 3"), "good.yaml", check_runs=False)
    assert restore(longer, str(dest), str(tmp_path / "fresh")) == 0  # a new budget: other trials, none restored
    other = parse_search(GOOD.replace("name: good", "name: other"), "other.yaml", check_runs=False)
    with pytest.raises(ValueError, match="published search: .* holds no search 'other'"):
        restore(other, str(dest), str(tmp_path / "fresh2"))


def test_the_tool_publishes_and_says_one_line_for_a_wrong_folder(tmp_path):
    spec = tmp_path / "good.yaml"
    spec.write_text(GOOD)
    search = parse_search(GOOD, str(spec), check_runs=False)
    out, dest = tmp_path / "out", tmp_path / "published"
    _search_out(out, search)
    tool = [sys.executable, os.path.join(ROOT, "tools", "publish_search.py")]
    done = subprocess.run(tool + ["publish", str(spec), str(out), str(dest)], capture_output=True, text=True)
    assert done.returncode == 0 and f"{dest}: 3 of 4 trials published" in done.stdout, done.stderr
    assert "Made with: `pipeline-vae tune" in (dest / "results.md").read_text()
    bad = subprocess.run(tool + ["publish", str(spec), str(tmp_path / "nowhere"), str(dest)], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "is not a folder" in bad.stderr


def test_the_published_search_restores_whole_under_todays_code(tmp_path):
    """docs/searches/latent50 names today's definition of every trial: restored, a rerun of `tune` trains none."""
    from pipeline_vae.search.spec import load_search
    search = load_search(os.path.join(ROOT, "apphub", "searches", "latent50.yaml"), check_runs=False)
    dest = os.path.join(ROOT, "docs", "searches", "latent50")
    assert restore(search, dest, str(tmp_path / "out")) == search.trials == 12
    states = [k["state"] for k in known_trials(search, str(tmp_path / "out"))]
    assert states.count("finished") == 1 and states.count("stopped") == 11

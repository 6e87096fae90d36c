"""Publish an ablation's finished trials (the table, plot, CSV and JSON of the records so far) into a folder that is
kept under version control, and restore the records from it into a fresh OUT folder, so a long ablation can run
across sessions and machines without losing or re-running a finished trial.

    publish(spec, "runs/ablations/losses_latent50", "docs/ablations/losses_latent50", command="pipeline-vae ...")
    restore(spec, "docs/ablations/losses_latent50", "runs/ablations/losses_latent50")   # then `ablate` skips them

The published results.json holds every finished trial's record (`runs`), each naming the definition it ran (`key`);
`restore` writes back only records whose key matches the spec's current definition of that trial.
"""
import json
import os
from typing import Any, Dict, List, Optional

from pipeline_vae.ablation.report import report_paths, write_reports
from pipeline_vae.ablation.runner import SPEC_FILE, check_out
from pipeline_vae.ablation.spec import Spec
from pipeline_vae.ablation.trial import RECORD_FILE, TRIAL_FILE, read_record, trial_row, trials_of
from pipeline_vae.atomic import write_json_atomic


def finished_rows(spec: Spec, out_dir: str, data: Optional[str] = None) -> List[Dict[str, Any]]:
    """The records of the spec's finished trials in `out_dir`, in table order, as report rows."""
    rows = []
    for trial in trials_of(spec, data):
        record = read_record(trial.folder(out_dir), trial.key)
        if record is not None:
            rows.append(trial_row(trial, record, out_dir))
    return rows


def publish(spec: Spec, out_dir: str, dest: str, command: str = "", data: Optional[str] = None) -> int:
    """Write the reports of the finished trials in `out_dir` into `dest` (each file atomically).

    Returns:
        How many trials were finished (0: nothing written).

    Raises:
        ValueError: If `out_dir` holds another spec's results.
    """
    if not os.path.isdir(out_dir):
        raise ValueError(f"OUT: {out_dir} is not a folder")
    check_out(out_dir, spec)
    rows = finished_rows(spec, out_dir, data)
    if rows:
        os.makedirs(dest, exist_ok=True)
        write_reports(spec, rows, dest, command=command)
    return len(rows)


def restore(spec: Spec, dest: str, out_dir: str, data: Optional[str] = None) -> int:
    """Write the records published in `dest/results.json` back into `out_dir` for every trial that has none there and
    whose definition is unchanged, so `ablate` with `--out out_dir` skips them.

    Returns:
        How many records were restored.

    Raises:
        ValueError: If `dest` has no readable results.json of this spec, or `out_dir` holds another spec's results.
    """
    path = report_paths(dest)["json"]
    try:
        with open(path) as file:
            published = json.load(file)
        if published["spec"]["name"] != spec.name:
            raise ValueError(f"{path} holds spec {published['spec']['name']!r}, not {spec.name!r}")
        runs = {(run["variant"], run["seed"]): run for run in published["runs"]}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"published results: cannot read {path} ({err})") from None
    check_out(out_dir, spec)
    os.makedirs(out_dir, exist_ok=True)
    write_json_atomic(os.path.join(out_dir, SPEC_FILE), spec.to_json())
    restored = 0
    for trial in trials_of(spec, data):
        run, folder = runs.get((trial.variant, trial.seed)), trial.folder(out_dir)
        if run is None or run.get("key") != trial.key or read_record(folder) is not None:
            continue
        os.makedirs(folder, exist_ok=True)
        write_json_atomic(os.path.join(folder, TRIAL_FILE), trial.to_json())
        write_json_atomic(os.path.join(folder, RECORD_FILE), dict(run))
        restored += 1
    return restored

"""Publish a search (its reports, every trial's sampled values, the stopped trials' per-epoch ELBOs and the finished
trials' records) into a folder kept under version control, and restore it into a fresh OUT folder, so a rerun of
`pipeline-vae tune` there knows every published trial and trains none of them again.

    publish(search, "runs/searches/latent50", "docs/searches/latent50", command="pipeline-vae tune ...")
    restore(search, "docs/searches/latent50", "runs/searches/latent50")

Only JSON, CSV, Markdown, YAML and the PNG plot are published: no weights, no checkpoints, nothing that runs.
"""
import os
from typing import Optional

from pipeline_vae.ablation.trial import RECORD_FILE, TRIAL_FILE, read_record
from pipeline_vae.atomic import write_json_atomic
from pipeline_vae.search.runner import (SEARCH_FILE, STOPPED_SUFFIX, TRIALS_DIR, _check_out, known_trials, params_path,
                                        read_json, stopped_path, trial_of)
from pipeline_vae.search.spec import SearchSpec

#: Where the finished trials' records go in the published folder (`<trial>.json`).
RECORDS_DIR = "records"


def publish(search: SearchSpec, out_dir: str, dest: str, command: str = "", data: Optional[str] = None) -> int:
    """Write the reports of the search in `out_dir` into `dest`, with `trials/` (values, stopped trials' ELBOs) and
    `records/` (finished trials' records), each file atomically.

    Returns:
        How many trials were finished or stopped (0: nothing written).

    Raises:
        ValueError: If `out_dir` is not a folder or holds another search.
    """
    from pipeline_vae.search.report import write_search_reports
    if not os.path.isdir(out_dir):
        raise ValueError(f"OUT: {out_dir} is not a folder")
    _check_out(out_dir, search)
    trials = [k for k in known_trials(search, out_dir, data) if k["state"] != "interrupted"]
    if not trials:
        return 0
    os.makedirs(os.path.join(dest, TRIALS_DIR), exist_ok=True)
    os.makedirs(os.path.join(dest, RECORDS_DIR), exist_ok=True)
    write_json_atomic(os.path.join(dest, SEARCH_FILE), search.to_json())
    for k in trials:
        name = k["trial"].variant
        write_json_atomic(os.path.join(dest, TRIALS_DIR, name + ".json"),
                          {"params": k["params"], "trial": k["trial"].to_json(), "started": k["started"]})
        if k["state"] == "stopped":
            write_json_atomic(os.path.join(dest, TRIALS_DIR, name + STOPPED_SUFFIX), k["stopped"])
        else:
            write_json_atomic(os.path.join(dest, RECORDS_DIR, name + ".json"), k["record"])
    write_search_reports(search, trials, dest, command=command)
    return len(trials)


def restore(search: SearchSpec, dest: str, out_dir: str, data: Optional[str] = None) -> int:
    """Write the trials published in `dest` back into `out_dir` (values, stopped trials' ELBOs, finished trials'
    records), for every trial that `out_dir` does not have yet and whose definition is unchanged.

    Returns:
        How many trials were restored.

    Raises:
        ValueError: If `dest` holds no published search of this name, or `out_dir` holds another search.
    """
    published = read_json(os.path.join(dest, SEARCH_FILE))
    if published is None or published.get("name") != search.name:
        raise ValueError(f"published search: {dest} holds no search {search.name!r} ({SEARCH_FILE} is "
                         f"{'missing' if published is None else 'of ' + repr(published.get('name'))})")
    _check_out(out_dir, search)
    os.makedirs(os.path.join(out_dir, TRIALS_DIR), exist_ok=True)
    write_json_atomic(os.path.join(out_dir, SEARCH_FILE), search.to_json())
    names = sorted(n for n in os.listdir(os.path.join(dest, TRIALS_DIR))
                   if n.endswith(".json") and not n.endswith(STOPPED_SUFFIX))
    restored = 0
    for name in names:
        saved = read_json(os.path.join(dest, TRIALS_DIR, name))
        params = (saved or {}).get("params")
        if not isinstance(params, dict) or sorted(params) != sorted(d.name for d in search.dimensions):
            continue
        trial = trial_of(search, params, data)
        if trial.variant + ".json" != name or os.path.exists(params_path(out_dir, trial)):
            continue
        record = read_json(os.path.join(dest, RECORDS_DIR, name))
        stopped = read_json(os.path.join(dest, TRIALS_DIR, trial.variant + STOPPED_SUFFIX))
        if record is not None and record.get("key") == trial.key and read_record(trial.folder(out_dir)) is None:
            os.makedirs(trial.folder(out_dir), exist_ok=True)
            write_json_atomic(os.path.join(trial.folder(out_dir), TRIAL_FILE), trial.to_json())
            write_json_atomic(os.path.join(trial.folder(out_dir), RECORD_FILE), record)
        elif stopped is not None and stopped.get("key") == trial.key:
            write_json_atomic(stopped_path(out_dir, trial), stopped)
        else:
            continue
        write_json_atomic(params_path(out_dir, trial), {"params": params, "trial": trial.to_json()})
        if isinstance(saved.get("started"), (int, float)):  # the order the trials started in, for the reports
            os.utime(params_path(out_dir, trial), (saved["started"], saved["started"]))
        restored += 1
    return restored

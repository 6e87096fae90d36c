"""A search's reports: every trial best first (`results.md`, `.json`, `.csv`), the metric over the trials in the
order they started with the stopped ones marked (`results.png`), and the best configuration (`best.json`) with an
ablation spec that re-runs it over 3 new seeds (not the search's own) on the whole budget (`best.yaml`)."""
import csv
import io
import json
import os
from typing import Any, Dict, List, Tuple

import yaml

from pipeline_vae.atomic import atomic_path, write_json_atomic
from pipeline_vae.search.spec import SearchSpec

#: How many seeds the best configuration is re-run with (`best.yaml`): the search's seed + 1, + 2, ..., never the
#: search's own, whose number (the one that won) a seeded re-run would only repeat.
RERUN_SEEDS = 3


def rerun_seeds(search: SearchSpec) -> List[int]:
    """The seeds `best.yaml` re-runs the best configuration with: the `RERUN_SEEDS` after the search's seed."""
    return [search.seed + i for i in range(1, RERUN_SEEDS + 1)]


def rows_of(search: SearchSpec, trials: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One row per trial (from `runner.known_trials`), best first: finished trials by the spec's metric, then stopped
    ones by the best ELBO they reached, then interrupted ones. `objective` is the metric (finished) or that ELBO."""
    from pipeline_vae.search.runner import objective_of
    rows = []
    for k in trials:
        row = {"trial": k["trial"].variant, "state": k["state"], "params": k["params"], "started": k["started"]}
        if k["state"] == "finished":
            record = k["record"]
            row.update(objective=objective_of(search, record), epochs=record.get("epochs"),
                       best_elbo=record.get("best_logged_elbo"), iw_bound=record.get("iw_bound"),
                       train_seconds=record.get("train_seconds"))
        elif k["state"] == "stopped":
            stopped = k["stopped"]
            row.update(objective=stopped.get("best_elbo"), epochs=stopped.get("epochs"),
                       best_elbo=stopped.get("best_elbo"), iw_bound=None, train_seconds=None)
        else:
            row.update(objective=None, epochs=None, best_elbo=None, iw_bound=None, train_seconds=None)
        rows.append(row)
    rank = {"finished": 0, "stopped": 1, "interrupted": 2}
    return sorted(rows, key=lambda r: (rank[r["state"]], -(r["objective"] if r["objective"] is not None
                                                           else float("-inf")), r["trial"]))


def _value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1 else f"{value:.2f}"
    return json.dumps(value).replace(" ", "")


def markdown(search: SearchSpec, rows: List[Dict[str, Any]], command: str = "") -> str:
    names = [d.name for d in search.dimensions]
    what = "best per-epoch ELBO" if search.metric == "elbo" else "IW bound"
    lines = [f"# Search {search.name}", "",
             f"{search.description}".strip(), "",
             f"{len(rows)} trials (of {search.trials}): {sum(r['state'] == 'finished' for r in rows)} ran their whole "
             f"budget ({search.budget['epochs']} epochs), {sum(r['state'] == 'stopped' for r in rows)} were stopped "
             f"by ASHA. Metric: {what} (nats, higher is better); a stopped trial's number is the best ELBO it "
             f"reached before it was stopped, not comparable with a finished one's. Optuna TPE, seed {search.seed}.",
             ""]
    if command:
        lines += [f"Made with: `{command}`", ""]
    lines += ["| trial | state | epochs | " + search.metric + " | " + " | ".join(f"`{n}`" for n in names) + " |",
              "|---|---|---:|---:|" + "---|" * len(names)]
    for i, row in enumerate(rows):
        name = f"**{row['trial']}**" if i == 0 and row["state"] == "finished" else row["trial"]
        lines.append(f"| {name} | {row['state']} | {_value(row['epochs'])} | {_value(row['objective'])} | " +
                     " | ".join(_value(row["params"].get(n)) for n in names) + " |")
    lines += ["", "The search's best number is optimistically biased (the best of many noisy trials): re-run it "
              "over 3 new seeds with `pipeline-vae ablate best.yaml` for an honest one."]
    return "\n".join(line for line in lines) + "\n"


def best_spec(search: SearchSpec, row: Dict[str, Any]) -> Dict[str, Any]:
    """An ablation spec (as a dict) that re-runs the best configuration over `rerun_seeds` on the whole budget."""
    variant = search.variant(row["params"])
    entry: Dict[str, Any] = {"name": "best", "description": f"trial {row['trial']} of search {search.name}: "
                             f"{variant.description}"}
    ops = {slot: None if specs is None else [{"op": s.op, "args": s.args} for s in specs]
           for slot, specs in variant.ops.items()}
    if ops:
        entry["ops"] = ops
    spec: Dict[str, Any] = {"name": f"{search.name}_best",
                            "description": f"the best configuration of search {search.name} ({search.metric} "
                                           f"{row['objective']:.2f} in the search), over {RERUN_SEEDS} new seeds",
                            "baseline": "best", "seeds": rerun_seeds(search), "budget": dict(search.budget),
                            "base": dict(variant.settings), "eval": dict(search.eval), "variants": [entry]}
    if search.data:
        spec["data"] = search.data
    return spec


def plot_search(rows: List[Dict[str, Any]], path: str, metric: str) -> str:
    """The metric of each trial in the order they started; stopped trials (their best ELBO so far) marked x."""
    from matplotlib.figure import Figure
    ordered = sorted((r for r in rows if r["objective"] is not None), key=lambda r: r["started"])
    fig = Figure(figsize=(6, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for state, marker, label in (("finished", "o", f"ran the whole budget ({metric})"),
                                 ("stopped", "x", "stopped by ASHA (best ELBO reached)")):
        points = [(i + 1, r["objective"]) for i, r in enumerate(ordered) if r["state"] == state]
        if points:
            ax.plot(*zip(*points), marker, label=label)
    ax.set_xlabel("trial (in the order started)")
    ax.set_ylabel("nats")
    if ordered:
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no trial has reported a number yet", ha="center", va="center", transform=ax.transAxes)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def write_search_reports(search: SearchSpec, trials: List[Dict[str, Any]], out_dir: str,
                         command: str = "") -> Tuple[List[Dict[str, Any]], Dict[str, str]]:
    """Write results.md/.json/.csv/.png and (when a trial finished) best.json and best.yaml into `out_dir`."""
    rows = rows_of(search, trials)
    paths = {"md": os.path.join(out_dir, "results.md"), "json": os.path.join(out_dir, "results.json"),
             "csv": os.path.join(out_dir, "results.csv"), "png": os.path.join(out_dir, "results.png")}
    with atomic_path(paths["md"]) as tmp, open(tmp, "w") as file:
        file.write(markdown(search, rows, command))
    write_json_atomic(paths["json"], {"search": search.to_json(), "command": command, "trials": rows})
    names = [d.name for d in search.dimensions]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["trial", "state", "epochs", "objective", "best_elbo", "iw_bound", *names])
    for row in rows:
        writer.writerow([row["trial"], row["state"], row["epochs"], row["objective"], row["best_elbo"],
                         row["iw_bound"], *[json.dumps(row["params"].get(n)) for n in names]])
    with atomic_path(paths["csv"]) as tmp, open(tmp, "w") as file:
        file.write(buffer.getvalue())
    plot_search(rows, paths["png"], search.metric)
    if rows and rows[0]["state"] == "finished":
        best = rows[0]
        variant = search.variant(best["params"])
        paths["best"] = os.path.join(out_dir, "best.json")
        write_json_atomic(paths["best"], {"trial": best["trial"], "metric": search.metric,
                                          "objective": best["objective"], "params": best["params"],
                                          "variant": variant.to_json()})
        paths["best_spec"] = os.path.join(out_dir, "best.yaml")
        with atomic_path(paths["best_spec"]) as tmp, open(tmp, "w") as file:
            file.write(f"# Re-run the best configuration of search {search.name} over {RERUN_SEEDS} new seeds:\n"
                       f"#   pipeline-vae ablate {paths['best_spec']}\n")
            yaml.safe_dump(best_spec(search, best), file, sort_keys=False)
    return rows, paths

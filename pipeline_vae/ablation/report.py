"""The ablation's results: per-run CSV and JSON, a Markdown table ranked by IW bound, and a point plot.

    results.csv   one row per variant x seed (every metric)
    results.json  the spec, every run, the per-variant summary, the command, the machine and the provenance (the
                  commits the trials ran, their hosts, their summed training and evaluation hours)
    results.md    variant | IW bound | delta | ELBO | delta | KL | active units | [bits/dim |] train time
                  (mean ± sd over seeds; bits/dim where the likelihoods give them)
    results.png   IW bound and ELBO per variant, mean ± sd over seeds, each seed as a dot, the baseline as a line
"""
import csv
import math
import os
import platform
from statistics import mean, stdev
from typing import Any, Dict, List, Sequence

from matplotlib.figure import Figure

from pipeline_vae.ablation.spec import Spec
from pipeline_vae.atomic import atomic_path, write_json_atomic
from pipeline_vae.plots import save_figure

#: Per-run columns of results.csv, in order (`variant` and `seed` first).
COLUMNS = ("variant", "seed", "iw_bound", "iw_bound_se", "iw_samples", "elbo_analytic", "elbo_mc", "elbo_mc_se",
           "reconstruction", "kl", "active_units", "latent_dim", "best_logged_elbo", "train_seconds",
           "train_epoch_seconds", "eval_seconds", "epochs", "parameters", "n_images", "likelihood", "elbo_bpd",
           "iw_bound_bpd", "commit")
#: The numbers summarised per variant.
SUMMARISED = ("iw_bound", "elbo_analytic", "reconstruction", "kl", "active_units", "train_seconds",
              "train_epoch_seconds", "elbo_bpd", "iw_bound_bpd")


def _json_safe(value: Any) -> Any:
    """NaN -> None, recursively, so results.json is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def summarize(spec: Spec, rows: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Mean and sample standard deviation over seeds of each `SUMMARISED` metric, per variant, ranked by IW bound
    (ELBO if the spec skips the IW bound), best first, with deltas against the baseline's means.

    Returns:
        One dict per variant: `variant`, `baseline` (bool), `seeds`, `<metric>_mean`, `<metric>_sd` (NaN for one seed),
        `delta_iw_bound`, `delta_elbo_analytic`.
    """
    summary = []
    for variant in spec.variants:
        runs = [row for row in rows if row["variant"] == variant.name]
        entry: Dict[str, Any] = {"variant": variant.name, "baseline": variant.name == spec.baseline,
                                 "description": variant.description, "seeds": len(runs)}
        for key in SUMMARISED:
            values = [_number(row.get(key)) for row in runs]
            known = values and not any(math.isnan(v) for v in values)  # e.g. no bits/dim for grey-level Bernoulli
            entry[f"{key}_mean"] = mean(values) if known else float("nan")
            entry[f"{key}_sd"] = stdev(values) if known and len(values) > 1 else float("nan")
        summary.append(entry)
    base = next(e for e in summary if e["baseline"])
    for entry in summary:
        for key in ("iw_bound", "elbo_analytic"):
            entry[f"delta_{key}"] = entry[f"{key}_mean"] - base[f"{key}_mean"]
    rank = "iw_bound_mean" if spec.eval["iw_samples"] else "elbo_analytic_mean"
    return sorted(summary, key=lambda e: -e[rank] if not math.isnan(e[rank]) else math.inf)


def this_machine() -> Dict[str, Any]:
    """The machine writing the report: platform, processor, CPU count, Python version."""
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "python": platform.python_version()}


def _train_time(row: Dict[str, Any]) -> float:
    """The row's training time: every epoch's (`train_epoch_seconds`) where recorded, else its last attempt's."""
    value = row.get("train_epoch_seconds")
    return _number(value if value is not None else row.get("train_seconds") or 0)


def provenance(rows: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Where the records came from: the code versions (the commits that trained, `train_commits`, where recorded, then
    those that evaluated, `commit`; "unknown" for records without one) and hosts, in order of appearance, the trials'
    summed training and evaluation time in hours (trials may have run at once, on several machines and across
    sessions: this is compute, not elapsed time; a row's `train_epoch_seconds`, every attempt's epochs, where it has
    one, else its `train_seconds`), and the trials that were resumed after an interruption (`attempts` > 1: their
    `train_seconds` are their last attempt's only)."""
    def seen(key: str) -> List[str]:
        return list(dict.fromkeys(str(row.get(key) or "unknown") for row in rows))
    trained = [str(c) for row in rows for c in (row.get("train_commits") or []) if c != "unknown"]
    return {"commits": list(dict.fromkeys(trained + seen("commit"))), "hosts": seen("host"),
            "train_hours": round(sum(_train_time(row) for row in rows) / 3600, 2),
            "eval_hours": round(sum(_number(row.get("eval_seconds") or 0) for row in rows) / 3600, 2),
            "resumed": [f"{row['variant']} seed {row['seed']}" for row in rows if (row.get("attempts") or 1) > 1]}


def _pm(entry: Dict[str, Any], key: str, digits: int = 2) -> str:
    value, spread = entry[f"{key}_mean"], entry[f"{key}_sd"]
    if math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}" + ("" if math.isnan(spread) else f" ± {spread:.{digits}f}")


def mnist_binarization(spec: Spec) -> str:
    """How the spec's MNIST test images are binarized for evaluation, by the variants' protocols."""
    protocols = {variant.settings.get("protocol", "seed") for variant in spec.variants}
    fixed = "binarized once by the seeded Bernoulli draw of protocol dynamic_mnist"
    cut = "statically binarized at 0.5 for the Bernoulli variants"
    if protocols == {"dynamic_mnist"}:
        return fixed
    return cut if protocols == {"seed"} else f"{cut} under the seed's protocol, {fixed} under that protocol"


def markdown_table(spec: Spec, summary: Sequence[Dict[str, Any]], command: str = "",
                   rows: Sequence[Dict[str, Any]] = ()) -> str:
    """The summary as a Markdown table with a caption saying how it was made (and, given the records `rows`, by
    which code and how much compute)."""
    iw = spec.eval["iw_samples"]
    budget = f"{spec.budget['epochs']} epoch(s)"
    if spec.budget["train_steps_per_epoch"]:
        budget += f" of {spec.budget['train_steps_per_epoch']} steps"
    source = spec.data_source()
    images = "all" if spec.eval["n_images"] is None else f"the first {spec.eval['n_images']}"
    data = f"MNIST test images ({mnist_binarization(spec)})" if source.data == "mnist" else \
        f"test images of `{source.data}`"
    bpd = "iw_bound_bpd" if iw else "elbo_bpd"
    with_bpd = any(not math.isnan(e[f"{bpd}_mean"]) for e in summary)
    lines = [f"**Ablation `{spec.name}`**: {len(spec.variants)} variants x seeds {spec.seeds}, {budget} each; "
             f"evaluated on {images} {data}, mean ± sd over seeds, nats per image (higher is better)"
             f"{'; bits/dim of the same bound (lower is better; n/a for a Bernoulli on grey levels)' if with_bpd else ''}"
             f". Ranked by {f'the IW bound (K={iw})' if iw else 'the ELBO'}; deltas are against the baseline.", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    epochs = bool(rows) and all(row.get("train_epoch_seconds") is not None for row in rows)
    if rows:
        made, planned = provenance(rows), len(spec.variants) * len(spec.seeds)
        machine = this_machine()
        lines += [f"Code: {', '.join(f'`{c}`' for c in made['commits'])}. Hosts: {', '.join(made['hosts'])} (this "
                  f"report: {machine['cpus']} CPUs, {machine['processor']}, {machine['platform']}, Python "
                  f"{machine['python']}). {len(rows)} trials: {made['train_hours']} h "
                  f"of training and {made['eval_hours']} h of evaluation in all (summed over trials)."
                  + (f" Resumed after an interruption: {', '.join(made['resumed'])}." if made["resumed"] else "")
                  + (" train s: FE's training time of every epoch, summed over the attempts (the per-epoch "
                     "validation passes and start-up not included)." if epochs else
                     " train s: the time `fit` took in the trial's last attempt." if made["resumed"] else "")
                  + (f" **Partial: {len(rows)} of {planned} trials finished so far.**" if len(rows) < planned else ""),
                  ""]
    header = ["variant", f"IW bound K={iw}" if iw else "IW bound", "Δ IW", "ELBO (closed-form KL)", "Δ ELBO", "KL",
              "active units"] + (["bits/dim"] if with_bpd else []) + ["train s"]
    lines += ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for e in summary:
        name = f"**{e['variant']}** (baseline)" if e["baseline"] else e["variant"]
        delta = (lambda key: "–" if e["baseline"] or math.isnan(e[key]) else f"{e[key]:+.2f}")
        cells = [name, _pm(e, "iw_bound"), delta("delta_iw_bound"), _pm(e, "elbo_analytic"),
                 delta("delta_elbo_analytic"), _pm(e, "kl"), _pm(e, "active_units", 1)] + (
                     [_pm(e, bpd, 3)] if with_bpd else []) + [
                         _pm(e, "train_epoch_seconds" if epochs else "train_seconds", 0)]
        lines.append("| " + " | ".join(cells) + " |")
    described = [e for e in summary if e["description"]]
    if described:
        lines += [""] + [f"- `{e['variant']}`: {e['description']}" for e in described]
    return "\n".join(lines) + "\n"


def plot_results(spec: Spec, rows: Sequence[Dict[str, Any]], summary: Sequence[Dict[str, Any]], path: str) -> str:
    """IW bound (if evaluated) and ELBO per variant: mean ± sd over seeds, seeds as dots, the baseline's mean as a
    dashed line. Variants in table order, best at the top. Returns `path`."""
    metrics = ([("iw_bound", f"IW bound, K={spec.eval['iw_samples']} (nats)")] if spec.eval["iw_samples"] else []) + \
        [("elbo_analytic", "ELBO (nats)")]
    height = 1.2 + 0.45 * len(summary)
    fig = Figure(figsize=(5 * len(metrics), height))
    order = [e["variant"] for e in summary]
    y = {name: len(order) - 1 - i for i, name in enumerate(order)}
    for i, (key, label) in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        for e in summary:
            colour = "tab:red" if e["baseline"] else "tab:blue"
            sd = e[f"{key}_sd"]
            ax.errorbar(e[f"{key}_mean"], y[e["variant"]], xerr=None if math.isnan(sd) else sd, fmt="o", color=colour,
                        capsize=4, ms=6)
            if e["baseline"]:
                ax.axvline(e[f"{key}_mean"], color=colour, ls="--", lw=0.8)
        seeds = [(row[key], y[row["variant"]]) for row in rows if row.get(key) is not None]
        if seeds:
            xs, ys = zip(*seeds)
            ax.scatter(xs, ys, s=10, color="black", alpha=0.5, zorder=3, label="one seed")
            ax.legend(loc="lower right", fontsize=7)
        ax.set_yticks(range(len(order)))
        ax.set_yticklabels(reversed(order) if i == 0 else [""] * len(order))
        ax.set(xlabel=label, ylim=(-0.6, len(order) - 0.4))
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle(f"Ablation {spec.name}: mean ± sd over seeds {spec.seeds} (red: baseline)", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


REPORT_KINDS = ("csv", "json", "md", "png")


def report_paths(out_dir: str) -> Dict[str, str]:
    """File kind ("csv", "json", "md", "png") -> where `write_reports` puts it."""
    return {kind: os.path.join(out_dir, f"results.{kind}") for kind in REPORT_KINDS}


def write_reports(spec: Spec, rows: Sequence[Dict[str, Any]], out_dir: str, command: str = "") -> Dict[str, str]:
    """Write results.csv, results.json, results.md and results.png into `out_dir` (each atomically).

    Returns:
        File kind ("csv", "json", "md", "png") -> path.
    """
    summary = summarize(spec, rows)
    paths = report_paths(out_dir)
    with atomic_path(paths["csv"]) as tmp, open(tmp, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    write_json_atomic(paths["json"], _json_safe({
        "spec": spec.to_json(), "runs": list(rows), "summary": summary, "command": command,
        "machine": this_machine(),
        "provenance": provenance(rows)
    }))
    with atomic_path(paths["md"]) as tmp, open(tmp, "w") as file:
        file.write(markdown_table(spec, summary, command, rows))
    plot_results(spec, rows, summary, paths["png"])
    return paths


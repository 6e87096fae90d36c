"""The training log (`train_log.csv`, FE's CSVLogger rows), read as data: what `plot` draws the curves from and what a
resumed run keeps. A damaged file is refused in one line naming it and the way out.

    log = read_log("runs/cvae/train_log.csv")    # {"loss": [(step, epoch, value), ...], "elbo": [...]}
"""
import csv
import os
from typing import Dict, List, Tuple

#: How to get past a damaged log.
WAY_OUT = "delete it (the run's earlier rows are lost) or retrain with `pipeline-vae train --fresh`"


def damaged(path: str, reason: str) -> ValueError:
    """The one-line error for a damaged training log."""
    return ValueError(f"training log {path} is damaged ({reason}); {WAY_OUT}")


def read_log(path: str) -> Dict[str, List[Tuple[int, int, float]]]:
    """Read FE's CSVLogger file: {"loss": [(step, epoch, value) of train rows], "elbo": [... of eval rows]}.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not text, has no mode/step/epoch columns, or a row's numbers do not read.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"training log {path} does not exist (runs of `pipeline-vae train` write it)")
    try:
        with open(path, newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
    except UnicodeDecodeError as err:
        raise damaged(path, f"not UTF-8 text: byte {err.object[err.start]:#x} at offset {err.start}") from None
    except csv.Error as err:
        raise damaged(path, f"not CSV: {err}") from None
    if rows and not {"mode", "step", "epoch"} <= set(rows[0]):
        raise damaged(path, "expected FastEstimator CSVLogger columns mode, step, epoch")
    out: Dict[str, List[Tuple[int, int, float]]] = {"loss": [], "elbo": []}
    for line, row in enumerate(rows, start=2):
        key = "loss" if row["mode"] == "train" else "elbo" if row["mode"] == "eval" else None
        if key and row.get(key, "") not in ("", None):
            try:
                out[key].append((int(row["step"]), int(row["epoch"]), float(row[key])))
            except (TypeError, ValueError):
                raise damaged(path, f"line {line} does not hold numbers in step, epoch, {key}") from None
    return out

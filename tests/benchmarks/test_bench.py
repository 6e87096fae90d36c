"""The benchmark never rots: `make bench-smoke` runs every path on tiny sizes. Nothing here asserts a timing."""
import json
import math
import os
import subprocess

import pytest

from benchmarks.bench import SECTIONS, parse_args, windows

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_windows_are_images_per_second_after_warmup():
    times = [0.0, 5.0, 6.0, 6.5, 7.0, 7.5, 8.0, 9.0]  # step end times; the first two steps are warm-up
    assert windows(times, batch=10, skip=2, window=2) == [2 * 10 / (7.0 - 6.0), 2 * 10 / (8.0 - 7.0)]


def test_unknown_sections_are_refused(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--only", "train,gpu"])
    assert "--only: unknown section(s) gpu" in capsys.readouterr().err


@pytest.mark.slow
def test_make_bench_smoke_runs_every_path(tmp_path):
    result = subprocess.run(["make", "-s", "bench-smoke", f"BENCH_OUT={tmp_path}"], cwd=ROOT, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    with open(tmp_path / "bench-smoke.json") as file:
        results = json.load(file)
    assert set(SECTIONS) <= set(results)
    medians = results["train"]["median_images_per_s"]
    assert set(medians) == {"project", "raw_tf_loop", "project_fe_loader", "project_numpyops_in_pipeline",
                            "project_cached_float32", "project_joint_gradient", "project_xla_autoclustering",
                            "raw_tf_loop_xla"}
    numbers = [*medians.values(), results["train"]["ratio_project_over_raw"],
               results["pipeline"]["median_images_per_s"], results["eval"]["elbo_images_per_s"],
               results["eval"]["iw_images_per_s"], *results["inference"].values(),
               *results["process"]["threads_images_per_s"].values()]
    numbers += [results["process"][k][field] for k in ("train", "raw_train", "iw") for field in ("peak_rss_mb",
                                                                                                "rss_before_mb")]
    numbers += [results["process"][k]["startup_seconds"] for k in ("train", "raw_train")]
    whole = results["whole_run"]["1"]
    numbers += [whole["median_ratio"], whole["median_rss_ratio"], whole["median_project_wall_seconds"],
                whole["median_raw_wall_seconds"]]
    breakdown = results["breakdown"]
    numbers += [breakdown["extras_share"], breakdown["epoch_seconds"], breakdown["phases"]["training steps"],
                breakdown["phases"]["imports (CLI, TensorFlow, FastEstimator, torch)"]]
    assert {"SampleGrid", "FullModelSaver(encoder)", "FullModelSaver(decoder)", "AtomicCSVLogger",
            "ExtendableRestoreWizard", "StopOnNaN"} <= set(breakdown["traces_per_epoch"])  # every trace was timed
    numbers += [breakdown["within_phases"]["autograph: the project's ops"],
                breakdown["within_phases"]["autograph: FastEstimator's and other functions"]]
    numbers += list(results["startup"].values())
    folder = results["folder"]
    numbers += [*folder["decode_images_per_s"], *folder["train_images_per_s"], folder["first_epoch_over_later"]]
    assert all(math.isfinite(v) and v > 0 for v in numbers)
    assert len(results["inference"]) == 4  # generate and reconstruct at two batch sizes in smoke mode
    quality = results["quality"]
    assert quality["project_default_batch100_lr1e-3"]["curve_seconds_elbo"]  # the smoke target is reached at once
    assert quality["raw_tf_loop_tutorial_batch32_lr1e-4"]["seconds_to_target"] > 0
    assert "ratio project / raw loop" in result.stdout and "time to -1000 nats" in result.stdout
    assert "whole run, 1 epoch(s): project / plain loop wall time" in result.stdout
    assert "start-up: pipeline-vae ablate a malformed spec" in result.stdout

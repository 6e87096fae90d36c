"""`train --track mlflow --track wandb`: a real MLflow SQLite store read back with `mlflow.search_runs`, and the real
W&B offline run files read back record by record, against the run's own `train_log.csv`; the later commands' numbers
and pictures in those runs and in the run's TensorBoard folder (TensorBoard's EventAccumulator)."""
import csv
import glob
import io
import json
import os

import numpy as np
import pytest


def same_points(got, expected, tolerance=1e-4):
    """The same (step, value) points, in any order, values within `tolerance` (the CSV writes them as text)."""
    got, expected = sorted(got), sorted(expected)
    return [step for step, _ in got] == [step for step, _ in expected] and all(
        abs(a - b) <= tolerance * max(1.0, abs(b)) for (_, a), (_, b) in zip(got, expected))


def read_wandb_offline(folder):
    """Every record of the W&B offline runs under `folder` (W&B has no public reader for them; this uses the pinned
    version's record format, as `wandb sync` does): history rows, summary, config and artifact file names."""
    from wandb.proto import wandb_internal_pb2
    from wandb.sdk.internal.datastore import DataStore
    found = {"history": [], "summary": {}, "config": {}, "artifacts": [], "ids": set()}
    for path in sorted(glob.glob(os.path.join(folder, "wandb", "offline-run-*", "run-*.wandb"))):
        store = DataStore()
        store.open_for_scan(path)
        while (data := store.scan_data()) is not None:
            record = wandb_internal_pb2.Record()
            record.ParseFromString(data)
            kind = record.WhichOneof("record_type")
            if kind == "history":
                found["history"].append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json)
                                         for i in record.history.item})
            elif kind == "summary":
                found["summary"].update({(i.key or "/".join(i.nested_key)): json.loads(i.value_json)
                                         for i in record.summary.update if (i.key or i.nested_key)})
            elif kind == "run":
                found["ids"].add(record.run.run_id)
                found["config"].update({i.key: json.loads(i.value_json) for i in record.run.config.update})
            elif kind == "config":
                found["config"].update({i.key: json.loads(i.value_json) for i in record.config.update})
            elif kind == "artifact":
                found["artifacts"] += [entry.path for entry in record.artifact.manifest.contents]
    return found


def _csv(save_dir, mode, key):
    with open(os.path.join(save_dir, "train_log.csv")) as file:
        return {int(r["step"]): float(r[key]) for r in csv.DictReader(file) if r["mode"] == mode and r[key]}


@pytest.mark.slow
def test_a_tracked_training_run_matches_its_csv_log_and_resumes_into_the_same_runs(tmp_path, run_cli):
    import mlflow
    import tensorflow as tf
    from pipeline_vae.inference import CVAE
    from mlflow.tracking import MlflowClient
    save_dir, uri = tmp_path / "run", f"sqlite:///{tmp_path}/mlruns.db"
    args = ["train", "--batch-size", "50", "--train-steps-per-epoch", "4", "--eval-steps-per-epoch", "2",
            "--log-steps", "3", "--save-dir", str(save_dir), "--track", "mlflow", "--track", "wandb",
            "--tracking-uri", uri, "--experiment", "cvae-test"]
    first = run_cli([*args, "--epochs", "1"])
    assert first.returncode == 0, first.stderr
    ids = json.loads((save_dir / "tracking.json").read_text())
    first_elbo = _csv(save_dir, "eval", "elbo")
    second = run_cli([*args, "--epochs", "2"])  # unseeded: resumes from the checkpoint, and so do the tracked runs
    assert second.returncode == 0, second.stderr
    assert "resuming from the checkpoint after epoch 1" in second.stdout
    assert json.loads((save_dir / "tracking.json").read_text()) == ids
    train_loss, eval_elbo = _csv(save_dir, "train", "loss"), _csv(save_dir, "eval", "elbo")
    assert sorted(train_loss) == [1, 3, 4, 6, 8] and sorted(eval_elbo) == [4, 8]  # log steps and each epoch's end

    mlflow.set_tracking_uri(uri)
    try:
        runs = mlflow.search_runs(search_all_experiments=True)
    finally:
        mlflow.set_tracking_uri(None)
    assert list(runs["run_id"]) == [ids["mlflow"]["run_id"]] and list(runs["status"]) == ["FINISHED"]
    run = runs.iloc[0]
    assert run["params.latent_dim"] == "2" and run["params.data.data"] == "mnist" and run["params.batch_size"] == "50"
    assert run["metrics.final/best_elbo"] == pytest.approx(max(eval_elbo.values()), abs=1e-4)
    client = MlflowClient(uri)
    history = {key: sorted((m.step, m.value) for m in client.get_metric_history(run["run_id"], key))
               for key in ("train/loss", "eval/elbo")}
    assert same_points(history["train/loss"], train_loss.items())
    # the final metrics are logged at the last step of each start (a chart would otherwise put them at the run's
    # start): after the first start's epochs and after the resumed one's
    last_step = max(max(train_loss), max(eval_elbo))
    steps = sorted(m.step for m in client.get_metric_history(run["run_id"], "final/best_elbo"))
    assert steps == [max(first_elbo), last_step]
    # A resumed run evaluates its checkpointed epoch again (FE saves the checkpoint before that epoch's eval) with
    # fresh noise: the CSV keeps the new row, the tracked run holds both points at that step.
    assert same_points(history["eval/elbo"], [*eval_elbo.items(), *first_elbo.items()])
    artifacts = client.download_artifacts(run["run_id"], "", str(tmp_path / "artifacts"))
    names = {os.path.relpath(os.path.join(d, f), artifacts) for d, _, fs in os.walk(artifacts) for f in fs}
    assert {"models/encoder_best_loss.h5", "models/decoder_best_loss.h5", "samples/samples.gif",
            "samples/epoch_001.png", "samples/epoch_002.png", "train_log.csv", "cvae_config.json",
            "model/MLmodel"} == {name for name in names if not name.startswith("model/") or name == "model/MLmodel"}
    # (each process ends by attaching the last grid it drew)
    # the best model, as an MLflow model: downloaded from the run and loaded, it encodes as the saved .h5 pair does
    images = (np.random.default_rng(3).random((5, 28, 28, 1)) > 0.5).astype(np.float32)
    served = mlflow.pyfunc.load_model(os.path.join(artifacts, "model"))
    mean, logvar = CVAE.load(str(save_dir)).encode(images)
    answer = served.predict(images)
    assert np.max(np.abs(answer["mean"] - mean)) < 1e-4 and np.max(np.abs(answer["logvar"] - logvar)) < 1e-4
    for name in ("encoder_best_loss.h5", "decoder_best_loss.h5"):  # the best models, as saved, and they load
        assert open(os.path.join(artifacts, "models", name), "rb").read() == (save_dir / name).read_bytes()
    tf.keras.models.load_model(os.path.join(artifacts, "models", "decoder_best_loss.h5"), compile=False)

    wandb_run = read_wandb_offline(str(save_dir))
    assert wandb_run["ids"] == {ids["wandb"]["id"]}
    logged = {key: [(row["_step"], row[key]) for row in wandb_run["history"] if key in row]
              for key in ("train/loss", "eval/elbo")}
    assert same_points(logged["train/loss"], history["train/loss"])
    assert same_points(logged["eval/elbo"], history["eval/elbo"])
    assert wandb_run["config"]["latent_dim"] == 2 and wandb_run["config"]["likelihood"] == "bernoulli"
    assert wandb_run["summary"]["final/best_elbo"] == pytest.approx(max(eval_elbo.values()), abs=1e-4)
    assert {"encoder_best_loss.h5", "decoder_best_loss.h5", "samples.gif"} <= set(wandb_run["artifacts"])


def test_a_bad_tracking_uri_is_one_line_before_anything_runs(tmp_path, run_cli):
    result = run_cli(["train", "--save-dir", str(tmp_path / "run"), "--track", "mlflow", "--tracking-uri",
                      f"sqlite:///{tmp_path}/no/such/dir/m.db"])
    assert result.returncode == 2
    assert result.stderr == (f"pipeline-vae: error: tracking_uri: folder {tmp_path}/no/such/dir of "
                             f"sqlite:///{tmp_path}/no/such/dir/m.db does not exist\n")
    assert not (tmp_path / "run").exists()
    alone = run_cli(["train", "--tracking-uri", "sqlite:///m.db"])
    assert alone.returncode == 2 and alone.stderr == "pipeline-vae: error: --tracking-uri is for --track mlflow\n"


@pytest.mark.slow
def test_evaluate_plot_and_explore_add_to_the_training_runs_tracked_runs(tmp_path, run_cli, mnist_path):
    """After `train --track mlflow --track wandb --tensorboard`, the later commands as users type them add their
    numbers and pictures to the same tracked runs (tracking.json) and TensorBoard folder, at the run's last training
    step; `--no-track` does not."""
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    save_dir, uri = tmp_path / "run", f"sqlite:///{tmp_path}/mlruns.db"
    done = run_cli(["train", "--batch-size", "50", "--train-steps-per-epoch", "4", "--eval-steps-per-epoch", "2",
                    "--epochs", "1", "--log-steps", "3", "--save-dir", str(save_dir), "--track", "mlflow",
                    "--track", "wandb", "--tracking-uri", uri, "--tensorboard"])
    assert done.returncode == 0, done.stderr
    ids = json.loads((save_dir / "tracking.json").read_text())
    run_id = ids["mlflow"]["run_id"]
    assert f"W&B run {ids['wandb']['id']} is offline; upload it with: wandb sync {save_dir}/wandb/offline-run-" in \
        done.stdout
    evaluated = run_cli(["evaluate", "--save-dir", str(save_dir), "--iw-samples", "3", "--n-images", "40"])
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"Logged to mlflow run {run_id} (evaluate, 1 file(s))" in evaluated.stdout
    assert f"Logged to wandb run {ids['wandb']['id']} (evaluate, 1 file(s))" in evaluated.stdout
    explored = run_cli(["explore", "--save-dir", str(save_dir), "--n-images", "30", "--data", mnist_path])
    assert explored.returncode == 0, explored.stderr
    plotted = run_cli(["plot", "--save-dir", str(save_dir), "--n-images", "100", "--no-track"])
    assert plotted.returncode == 0, plotted.stderr and "Logged to" not in plotted.stdout

    metrics = json.loads((save_dir / "metrics.json").read_text())
    explore = json.loads((save_dir / "explore.json").read_text())
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    last_step = max(_csv(save_dir, "train", "loss"))
    for key, value in (("evaluate/iw_bound", metrics["iw_bound"]), ("evaluate/elbo_analytic", metrics["elbo_analytic"]),
                       ("explore/active_units", explore["active_units"]), ("explore/elbo_mean", explore["elbo_mean"])):
        (point, ) = client.get_metric_history(run_id, key)
        assert point.value == pytest.approx(value, rel=1e-6) and point.step == last_step == 4, key
    from pipeline_vae.ablation.trial import code_version
    commit = code_version()  # None where the code is not a git checkout (the mutation check's copy)
    assert run.data.tags.get("mlflow.source.git.commit") == (commit.split("+")[0] if commit else None)
    assert run.data.tags.get("pipeline_vae.commit") == commit
    assert run.data.tags["pipeline_vae.command"].startswith("pipeline-vae train --batch-size 50")
    assert run.data.tags["pipeline_vae.command.evaluate"].startswith("pipeline-vae evaluate --save-dir")
    (lr, ) = client.get_metric_history(run_id, "train/encoder_lr")  # every epoch, with no schedule too
    assert (lr.step, lr.value) == (4, pytest.approx(1e-3))
    artifacts = client.download_artifacts(run_id, "", str(tmp_path / "artifacts"))
    names = {os.path.relpath(os.path.join(d, f), artifacts) for d, _, fs in os.walk(artifacts) for f in fs}
    assert {"evaluate/metrics.json", "explore/explore.json", "explore/traversals.png",
            "explore/interpolation.png", "explore/latent_units.png", "explore/best_worst.png"} <= names
    assert not any(name.startswith("plot/") for name in names)  # --no-track

    wandb_run = read_wandb_offline(str(save_dir))
    assert wandb_run["ids"] == {ids["wandb"]["id"]}  # the same W&B run, reopened
    assert wandb_run["summary"]["evaluate/iw_bound"] == pytest.approx(metrics["iw_bound"], rel=1e-6)
    assert wandb_run["summary"]["explore/active_units"] == explore["active_units"]
    assert {"metrics.json", "traversals.png"} <= set(wandb_run["artifacts"])
    images = {key[:-len("/_type")]: value for row in wandb_run["history"] for key, value in row.items()
              if key.endswith("/_type")}  # (the record's nested keys, flattened)
    assert images.get("explore/traversals") == "image-file" and images.get("samples/epoch_001") == "image-file"

    (start, ) = list((save_dir / "tensorboard").iterdir())
    assert "Logged to TensorBoard " + str(start / "evaluate") in evaluated.stdout
    board = {}
    for command in ("evaluate", "explore"):
        board[command] = EventAccumulator(str(start / command), size_guidance={"scalars": 0, "images": 0})
        board[command].Reload()
    assert not (start / "plot").exists()  # --no-track
    for command, key, value in (("evaluate", "iw_bound", metrics["iw_bound"]),
                                ("explore", "active_units", explore["active_units"])):
        (point, ) = board[command].Scalars(f"{command}/{key}")
        assert (point.step, point.value) == (4, pytest.approx(value, rel=1e-6))
    (picture, ) = board["explore"].Images("explore/traversals")
    from PIL import Image
    drawn = np.asarray(Image.open(io.BytesIO(picture.encoded_image_string)).convert("RGB"))
    assert picture.step == 4 and np.array_equal(drawn, np.asarray(Image.open(save_dir / "traversals.png").convert("RGB")))

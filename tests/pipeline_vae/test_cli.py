import csv
import io
import json
import os

import pytest

from pipeline_vae.cli import main


@pytest.mark.parametrize("args, message", [
    (["train", "--epochs", "0"], "argument --epochs: expected a positive integer, got '0'"),
    (["train", "--lr=-1e-3"], "argument --lr: expected a positive number, got '-1e-3'"),
    (["train", "--batch-size", "ten"], "argument --batch-size: expected a positive integer, got 'ten'"),
    (["train", "--latent-dim", "2.5"], "argument --latent-dim: expected a positive integer, got '2.5'"),
])
def test_bad_flags_exit_2_with_the_argument_named(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_data_file_is_one_line_without_traceback(tmp_path, capsys):
    code = main(["train", "--data", str(tmp_path / "nope.npz"), "--save-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "nope.npz does not exist; expected 'mnist'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()  # the data is checked before the run folder is made


def test_bad_image_folder_from_the_cli_is_one_line_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a.png").write_bytes(b"not a png")
    code = main(["train", "--data", str(tmp_path / "pics"), "--save-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "a.png is not a readable image" in err
    assert not (tmp_path / "run").exists()


def test_debug_shows_the_traceback(tmp_path, capsys):
    code = main(["train", "--debug", "--data", str(tmp_path / "nope.npz"), "--save-dir", str(tmp_path / "run")])
    assert code == 2 and "Traceback" in capsys.readouterr().err


def test_data_command_verifies(mnist_path, capsys):
    assert main(["data", "--data", mnist_path]) == 0
    assert "MNIST OK: 60000 train / 10000 test" in capsys.readouterr().out


@pytest.mark.slow
def test_train_end_to_end_as_a_user_runs_it(tmp_path, run_cli):
    save_dir = tmp_path / "run"
    result = run_cli(["train", "--epochs", "2", "--batch-size", "32", "--train-steps-per-epoch", "3",
                      "--eval-steps-per-epoch", "2", "--save-dir", str(save_dir), "--log-steps", "0"])
    assert result.returncode == 0, result.stderr
    assert "FastEstimator-Eval: step: 6; epoch: 2;" in result.stdout  # FE's own progress lines
    last = result.stdout.strip().splitlines()
    assert last[-2].startswith("Final test ELBO: -") and "first 2 test batches" in last[-2]
    assert str(save_dir / "encoder_best_loss.h5") in last[-1] and str(save_dir / "decoder_best_loss.h5") in last[-1]
    assert {"encoder_best_loss.h5", "decoder_best_loss.h5", "cvae_config.json", "train_log.csv", "samples.gif"} <= set(
        os.listdir(save_dir))
    assert result.stderr.strip() == ""  # TF's start-up noise is silenced


def test_errors_raised_while_tf_traces_a_graph_become_the_ops_own_line():
    import tensorflow as tf

    from ops import Rescale
    from pipeline_vae.cli import _one_line
    with pytest.raises(ValueError) as info:
        tf.function(lambda x: Rescale().forward([x], state={}))(tf.zeros([2, 28, 28]))
    assert "in user code:" in str(info.value)  # TF's framing, which the CLI must strip
    assert _one_line(info.value).startswith("Rescale: input 'x' must hold integer images in 0..255 (uint8), got float32")


def test_evaluate_prints_the_table_and_writes_metrics_json(trained_dir, mnist_path, capsys):
    import json
    assert main(["evaluate", "--save-dir", trained_dir, "--iw-samples", "4", "--n-images", "40",
                 "--data", mnist_path]) == 0
    out = capsys.readouterr().out
    metrics = json.load(open(os.path.join(trained_dir, "metrics.json")))
    assert metrics["iw_samples"] == 4 and metrics["n_images"] == 40
    assert f"{metrics['iw_bound']:.2f}" in out and "active units" in out


def test_evaluate_on_a_missing_dir_is_one_line(tmp_path, capsys):
    assert main(["evaluate", "--save-dir", str(tmp_path / "none")]) == 1
    assert capsys.readouterr().err.strip() == f"pipeline-vae: error: save_dir {tmp_path / 'none'} does not exist or " \
                                             "is not a folder"


def test_a_run_folder_without_models_or_with_a_broken_config_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["plot", "--save-dir", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "encoder model" in err and "encoder_best_loss.h5 does not exist" in err
    (tmp_path / "empty" / "cvae_config.json").write_text('{"version": 2, "likelihood": "poisson"}')
    assert main(["evaluate", "--save-dir", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cvae_config.json: likelihood must be one of bernoulli" in err


def test_plot_writes_the_pictures(trained_dir, mnist_path, capsys):
    assert main(["plot", "--save-dir", trained_dir, "--n-images", "300", "--data", mnist_path]) == 0
    saved = [line.split("Saved: ")[1] for line in capsys.readouterr().out.splitlines() if line.startswith("Saved: ")]
    assert {os.path.basename(p) for p in saved} >= {"manifold.png", "latent_scatter.png", "reconstructions.png"}
    assert all(os.path.getsize(p) > 1000 for p in saved)


def test_plot_writes_vector_figures_as_the_docs_show(trained_dir, mnist_path, run_cli, tmp_path):
    """`pipeline-vae plot --save-dir DIR --format pdf` (docs/usage.md) as a user types it; a format it cannot write
    is one line naming the flag, and nothing is written."""
    import shutil
    run = str(tmp_path / "run")
    shutil.copytree(trained_dir, run)
    result = run_cli(["plot", "--save-dir", run, "--format", "pdf", "--n-images", "200", "--data", mnist_path])
    assert result.returncode == 0, result.stderr
    saved = [line.split("Saved: ")[1] for line in result.stdout.splitlines() if line.startswith("Saved: ")]
    assert {os.path.basename(p) for p in saved} == {"manifold.pdf", "latent_scatter.pdf", "reconstructions.pdf",
                                                   "training_curves.pdf", "samples.gif"}
    for path in saved:
        with open(path, "rb") as file:
            assert file.read(5) == (b"GIF89" if path.endswith(".gif") else b"%PDF-")
    before = sorted(os.listdir(run))
    bad = run_cli(["plot", "--save-dir", run, "--format", "jpg"])
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--format" in bad.stderr and "'jpg'" in bad.stderr
    assert sorted(os.listdir(run)) == before


def test_explore_as_the_docs_show(trained_dir, mnist_path, run_cli, tmp_path):
    """`pipeline-vae explore --save-dir DIR` (docs/usage.md) in a subprocess: the pictures and explore.json; a count it
    cannot use is one line naming the flag."""
    import shutil
    run = str(tmp_path / "run")
    shutil.copytree(trained_dir, run)
    result = run_cli(["explore", "--save-dir", run, "--n-images", "300", "--data", mnist_path, "--format", "svg"])
    assert result.returncode == 0, result.stderr
    saved = {os.path.basename(line.split("Saved: ")[1]) for line in result.stdout.splitlines()
             if line.startswith("Saved: ")}
    assert saved == {"interpolation.svg", "traversals.svg", "latent_units.svg", "best_worst.svg", "explore.json"}
    summary = json.load(open(os.path.join(run, "explore.json")))
    assert summary["n_images"] == 300 and f"{summary['active_units']} of 2 units active" in result.stdout
    bad = run_cli(["explore", "--save-dir", run, "--units", "0"])
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--units" in bad.stderr


@pytest.mark.slow
def test_two_seeded_runs_give_bit_identical_models(tmp_path, run_cli):
    import h5py
    import numpy as np

    def weights(path):
        arrays = []
        with h5py.File(path, "r") as file:
            file["model_weights"].visititems(
                lambda name, obj: arrays.append(np.array(obj)) if isinstance(obj, h5py.Dataset) else None)
        return arrays

    for run in ("a", "b"):
        result = run_cli(["train", "--seed", "7", "--epochs", "1", "--train-steps-per-epoch", "20",
                          "--eval-steps-per-epoch", "2", "--save-dir", str(tmp_path / run), "--log-steps", "0"])
        assert result.returncode == 0, result.stderr
    for name in ("encoder_best_loss.h5", "decoder_best_loss.h5"):
        first, second = weights(tmp_path / "a" / name), weights(tmp_path / "b" / name)
        assert len(first) == len(second) > 0
        assert all(np.array_equal(x, y) for x, y in zip(first, second))


ABLATION = """\
name: cli
budget: {epochs: 1, train_steps_per_epoch: 3, eval_steps_per_epoch: 1}
eval: {iw_samples: 2, n_images: 10}
variants:
  - name: base
  - name: mlp
    set: {model: mlp, widths: [32]}
"""


def test_ablate_check_prints_the_plan(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(ABLATION)
    assert main(["ablate", str(spec), "--check"]) == 0
    assert capsys.readouterr().out == (f"{spec}: OK: 2 variants (base, mlp; baseline base) x 1 seeds = 2 runs of 1 "
                                       "epoch(s)\n")


def test_ablate_with_a_bad_spec_is_one_line_naming_the_line(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(ABLATION.replace("widths: [32]", "widths: [32], depth: 3"))
    assert main(["ablate", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"pipeline-vae: error: {spec}:7: variants[1].set.depth: unknown key 'depth'; expected one of " \
                  "latent_dim, batch_size, learning_rate, lr_schedule, model, widths, loss, kl_warmup, likelihood, " \
                  "binarize_threshold, protocol, prior, prior_components, upper_latent_dim, flow, flow_steps\n"
    assert not (tmp_path / "out").exists()  # nothing ran


@pytest.mark.slow
def test_ablate_end_to_end_as_a_user_runs_it(tmp_path, run_cli):
    spec = tmp_path / "spec.yaml"
    spec.write_text(ABLATION.replace("  - name: mlp\n    set: {model: mlp, widths: [32]}\n", ""))
    out = tmp_path / "out"
    result = run_cli(["ablate", str(spec), "--out", str(out)])
    assert result.returncode == 0, result.stderr
    assert "[1/1] base seed 0 done" in result.stdout and "| **base** (baseline) | -" in result.stdout
    assert {"results.csv", "results.json", "results.md", "results.png", "spec.json", "runs"} == set(os.listdir(out))
    assert result.stderr.strip() == ""


def test_train_rejects_bad_widths(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--model", "mlp", "--widths", "512,0"])
    assert "argument --widths: expected a list of positive integers such as 512,256, got '512,0'" in \
        capsys.readouterr().err


def _log_rows(save_dir):
    with open(os.path.join(save_dir, "train_log.csv")) as file:
        return list(csv.DictReader(file))


@pytest.mark.slow
def test_tensorboard_events_hold_the_logged_elbo_and_no_resume_writes_no_checkpoint(tmp_path, run_cli):
    """--tensorboard: the event files, read with TensorBoard's own reader, hold every epoch's test ELBO and every
    logged training step's loss as logged in the CSV (FE's update_freq="epoch" wrote only epoch_time for training),
    each epoch's learning rate, each eval epoch's sample grid (the last one is the best decoder's, decoded here from
    the grid's seeded latents), and an HParams record with the run's settings and best ELBO.
    --no-resume: no checkpoint is written, and the same command again trains from step 1."""
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData
    import numpy as np
    import tensorflow as tf
    save_dir = tmp_path / "run"
    args = ["train", "--epochs", "2", "--batch-size", "50", "--train-steps-per-epoch", "3", "--eval-steps-per-epoch",
            "2", "--log-steps", "2", "--tensorboard", "--no-resume", "--seed", "0", "--lr", "0.002", "--save-dir",
            str(save_dir)]
    first = run_cli(args)
    assert first.returncode == 0, first.stderr
    assert not (save_dir / "checkpoint").exists()
    (eval_dir, ) = list((save_dir / "tensorboard").glob("*/eval"))
    events = EventAccumulator(str(eval_dir), size_guidance={"scalars": 0})
    events.Reload()
    logged = {int(r["step"]): float(r["elbo"]) for r in _log_rows(save_dir) if r["mode"] == "eval"}
    assert sorted(logged) == [3, 6]
    assert {e.step: e.value for e in events.Scalars("elbo")} == pytest.approx(logged, abs=1e-3)
    (train_dir, ) = list((save_dir / "tensorboard").glob("*/train"))
    train_events = EventAccumulator(str(train_dir), size_guidance={"scalars": 0})
    train_events.Reload()
    losses = {int(r["step"]): float(r["loss"]) for r in _log_rows(save_dir) if r["mode"] == "train" and r["loss"]}
    assert sorted(losses) == [1, 2, 3, 4, 6]  # FE logs step 1 and every log_steps-th step; and each epoch's last
    assert {e.step: e.value for e in train_events.Scalars("loss")} == pytest.approx(losses, rel=1e-5)
    for model in ("encoder", "decoder"):
        assert {e.step: e.value for e in train_events.Scalars(f"{model}_lr")} == pytest.approx({3: 0.002, 6: 0.002})
    assert [e.step for e in events.Images("samples")] == [3, 6]
    assert logged[6] > logged[3]  # so the saved decoder is the last epoch's, whose grid is the last image
    grid = np.asarray(Image.open(io.BytesIO(events.Images("samples")[-1].encoded_image_string)), np.float64)
    decoder = tf.keras.models.load_model(str(save_dir / "decoder_best_loss.h5"), compile=False)
    z = np.random.default_rng(0).standard_normal((16, 2)).astype(np.float32)  # SampleGrid's seed-0 latents
    digits = 1.0 / (1.0 + np.exp(-decoder(z).numpy()[..., 0]))
    expected = np.ones((4 * 30 + 2, 4 * 30 + 2))  # a 4 x 4 grid, 2 px apart, ink on white
    for i in range(16):
        r, c = divmod(i, 4)
        expected[2 + 30 * r:30 * r + 30, 2 + 30 * c:30 * c + 30] = 1.0 - digits[i]
    assert grid.shape[:2] == expected.shape
    assert np.max(np.abs(grid[..., 0] / 255.0 - expected)) < 1.5 / 255
    (hparams_dir, ) = list((save_dir / "tensorboard").glob("*/hparams"))
    record = EventAccumulator(str(hparams_dir), size_guidance={"scalars": 0})
    record.Reload()
    start = HParamsPluginData.FromString(record.PluginTagToContent("hparams")["_hparams_/session_start_info"])
    chosen = {key: value.number_value or value.string_value for key, value in start.session_start_info.hparams.items()}
    assert chosen["latent_dim"] == 2 and chosen["batch_size"] == 50 and chosen["learning_rate"] == pytest.approx(0.002)
    assert [e.value for e in record.Scalars("hparams/best_elbo")] == pytest.approx([max(logged.values())], abs=1e-3)
    again = run_cli(args)
    assert again.returncode == 0, again.stderr
    assert "FastEstimator-Start: step: 1;" in again.stdout and "resuming" not in again.stdout
    assert again.stderr.strip() == ""  # (no "taking over" note: the first run released its lock cleanly)


@pytest.mark.slow
def test_early_stop_ends_the_run_and_lr_plateau_divides_the_rate_by_ten(tmp_path, run_cli):
    """At lr 0.03 Adam overshoots, so the test ELBO soon gets worse from one epoch to the next (seeded: the same
    epochs every time; here epoch 3). With patience 1 the run stops at the first epoch that did not improve, and in
    that epoch's log row both models' learning rate is divided by 10. (A small rate would not do: two steps barely
    change the model, and the eval noise of an untrained model is far smaller than its steady improvement.)"""
    save_dir = tmp_path / "run"
    result = run_cli(["train", "--epochs", "8", "--batch-size", "50", "--train-steps-per-epoch", "2",
                      "--eval-steps-per-epoch", "2", "--log-steps", "0", "--lr", "0.03", "--early-stop", "1",
                      "--lr-plateau", "1", "--seed", "0", "--save-dir", str(save_dir)])
    assert result.returncode == 0, result.stderr
    evals = [r for r in _log_rows(save_dir) if r["mode"] == "eval"]
    assert 2 <= len(evals) < 8 and "FastEstimator-EarlyStopping: 'elbo' triggered an early stop" in result.stdout
    elbos = [float(r["elbo"]) for r in evals]
    assert all(b > a for a, b in zip(elbos[:-2], elbos[1:-1]))  # every epoch before the last improved ...
    assert elbos[-1] <= max(elbos[:-1])  # ... and the last did not: it stopped at the first that did not
    assert all(r["encoder_lr"] == r["decoder_lr"] == "" for r in evals[:-1])  # no reduction before
    assert float(evals[-1]["encoder_lr"]) == pytest.approx(0.003) and float(evals[-1]["decoder_lr"]) == pytest.approx(
        0.003)


EXIT_SCRIPT = """
import atexit, sys, threading, time
import tensorflow
from pipeline_vae.cli import exit_now
atexit.register(lambda: print("atexit handler ran", flush=True))
if sys.argv[1] == "thread":
    def late():
        time.sleep(1.0)
        open(sys.argv[2], "w").write("written")
    threading.Thread(target=late).start()
sys.stdout.write("buffered line, no newline flush")
exit_now(3)
"""


@pytest.mark.slow
@pytest.mark.parametrize("case", ["quick", "thread"])
def test_the_console_scripts_quick_exit_keeps_code_handlers_output_and_running_threads(case, tmp_path):
    import subprocess
    import sys
    late = tmp_path / "late.txt"
    result = subprocess.run([sys.executable, "-c", EXIT_SCRIPT, case, str(late)], capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 3
    assert "buffered line, no newline flush" in result.stdout and "atexit handler ran" in result.stdout
    if case == "thread":  # a non-daemon thread still running: the usual exit, which waits for it
        assert late.read_text() == "written"


FAST_ERROR_SCRIPT = """
import sys
from pipeline_vae.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
print(code, "tensorflow" in sys.modules)
"""


@pytest.mark.parametrize("args, message", [
    (["train", "--data", "{tmp}/nope.npz"], "nope.npz does not exist"),
    (["train", "--epochs", "0"], "argument --epochs: expected a positive integer"),
    (["train", "--track", "mlflow", "--tracking-uri", "sqlite:///{tmp}/no/such/dir/x.db"], "tracking_uri"),
    (["evaluate", "--save-dir", "{tmp}/no_run"], "no_run"),
    (["ablate", "{tmp}/nope.yaml"], "spec file {tmp}/nope.yaml does not exist"),
    (["ablate", "{tmp}/bad.yaml"], "bad.yaml:2: budget.epochs: epochs must be a positive integer, got 0"),
    (["ablate", "{tmp}/bad_set.yaml"], "bad_set.yaml:4: variants[0].set.latent_dim: latent_dim must be a positive integer"),
])
def test_bad_input_is_answered_before_tensorflow_is_imported(tmp_path, args, message):
    # Issue 14: every bad-input error answers at once (importing TensorFlow alone takes 3-5 s here).
    import subprocess
    import sys
    (tmp_path / "bad.yaml").write_text("name: x\nbudget: {epochs: 0}\nvariants: [{name: a}]\n")
    (tmp_path / "bad_set.yaml").write_text("name: x\nbudget: {epochs: 1}\nvariants:\n  - {name: a, set: {latent_dim: "
                                           "-1}}\n")
    argv = [a.format(tmp=tmp_path) for a in args]
    result = subprocess.run([sys.executable, "-c", FAST_ERROR_SCRIPT, *argv], capture_output=True, text=True,
                            timeout=120)
    assert message.format(tmp=tmp_path) in result.stderr
    code, imported = result.stdout.split()
    assert code != "0" and imported == "False"


def test_evaluate_continues_an_interrupted_iw_bound(trained_dir, mnist_path, tmp_path, capsys):
    import json
    import shutil

    from pipeline_vae.data import load_data
    from pipeline_vae.inference import CVAE
    from pipeline_vae.metrics import iw_bound
    run = str(tmp_path / "run")
    shutil.copytree(trained_dir, run)
    partial = os.path.join(run, "iw_bound_k600_seed0.partial.npz")
    vae = CVAE.load(run)
    images = load_data(mnist_path).test_images(40)
    whole = iw_bound(vae, images, 600, seed=0)

    class InterruptSecondCall:  # the first call (8 images of K=600 at the default call size) is saved, then Ctrl-C
        calls = 0

        def update(self, _count):
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        iw_bound(vae, images, 600, seed=0, progress=InterruptSecondCall(), resume_file=partial, save_every=0)
    assert os.path.exists(partial)
    assert main(["evaluate", "--save-dir", run, "--iw-samples", "600", "--n-images", "40", "--data", mnist_path]) == 0
    assert "Resuming the IW bound at image 9 of 40" in capsys.readouterr().err
    assert json.load(open(os.path.join(run, "metrics.json")))["iw_bound"] == whole.mean()
    assert not os.path.exists(partial)


@pytest.mark.slow
def test_the_literature_protocol_as_a_user_names_it(tmp_path, run_cli):
    """`train --protocol dynamic_mnist --model mlp_tanh` chooses on validation; `evaluate` then scores the fixed
    binary test images at the protocol's K = 5000 without being told."""
    save_dir = tmp_path / "run"
    result = run_cli(["train", "--protocol", "dynamic_mnist", "--model", "mlp_tanh", "--latent-dim", "50",
                      "--epochs", "1", "--train-steps-per-epoch", "3", "--eval-steps-per-epoch", "2",
                      "--save-dir", str(save_dir), "--log-steps", "0", "--no-resume"])
    assert result.returncode == 0, result.stderr
    assert "50000 train / 10000 validation / 10000 test images" in result.stdout
    assert "best models chosen by validation ELBO" in result.stdout
    assert result.stdout.strip().splitlines()[-2].startswith("Final validation ELBO: -")
    config = json.loads((save_dir / "cvae_config.json").read_text())
    assert config["protocol"] == "dynamic_mnist" and config["slots"]["binarize"] == ["DynamicBinarize"]
    assert config["data"]["fixed_binarization"] == 0 and config["iw_samples"] == 5000
    result = run_cli(["evaluate", "--save-dir", str(save_dir), "--n-images", "20"])
    assert result.returncode == 0, result.stderr
    assert "IW bound, K=5000 (nats)" in result.stdout
    metrics = json.loads((save_dir / "metrics.json").read_text())
    assert metrics["iw_samples"] == 5000 and metrics["n_images"] == 20 and metrics["iw_bound_se"] > 0

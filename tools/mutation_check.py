"""Mutation check: break the code on purpose, one way at a time, and confirm that a test fails.

    make mutation-check                          # every mutation; writes docs/mutation_check.md
    .venv/bin/python tools/mutation_check.py --only iw_log_sum_exp --only kl_doubled_in_evaluate

Each mutation replaces one exact piece of source text (which must occur exactly once) in a temporary copy of the
working tree (tracked files plus untracked ones git does not ignore), then runs the tests that should catch it there
with `PYTHONPATH` pointing at the copy (subprocesses and the `pipeline-vae` console script import the copy too). The
same tests run once on the unmutated copy first and must pass; a mutation counts as caught when pytest then reports
a failing test (exit code 1). A mutation whose text no longer occurs exactly once, whose mutated copy does not import,
or under which pytest cannot run the tests (exit 2-4: a collection error, ...) is **stale**: reported apart from
caught and missed, because it tests nothing until it is updated. Exit status 0 only if every mutation was caught.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclass(frozen=True)
class Mutation:
    """One deliberate break.

    Args:
        name: Short identifier (for --only).
        what: What the break does, for the table.
        path: File to change, relative to the repository root.
        old: Exact source text to replace (must occur once).
        new: Its replacement.
        tests: pytest node ids or files expected to catch it.
    """
    name: str
    what: str
    path: str
    old: str
    new: str
    tests: Tuple[str, ...]


METRICS_TESTS = ("tests/pipeline_vae/test_metrics_reference.py", )
#: The test that reads a run's TensorBoard events back.
TB_TEST = "tests/pipeline_vae/test_cli.py::test_tensorboard_events_hold_the_logged_elbo_and_no_resume_writes_no_checkpoint"
MUTATIONS: Tuple[Mutation, ...] = (
    # The five breaks of issue 11's table.
    Mutation("iw_log_sum_exp", "IW bound: log-sum-exp instead of log-mean-exp (+log K)", "ops/densities.py",
             "return tf.reduce_logsumexp(values, axis=axis) - tf.math.log(count)",
             "return tf.reduce_logsumexp(values, axis=axis)", METRICS_TESTS),
    Mutation("iw_weight_sign", "IW weights in the evaluation: sign of log p(z) - log q(z|x) flipped",
             "ops/densities.py", "return log_px - monte_carlo_kl(z, mean, logvar, log_pz, log_qz)",
             "return log_px + monte_carlo_kl(z, mean, logvar, log_pz, log_qz)", METRICS_TESTS + ("tests/ops/test_iwae_loss.py", )),
    Mutation("kl_doubled_in_evaluate", "evaluation: analytic KL doubled", "pipeline_vae/metrics.py",
             "return recon, kl_mc, kl_to_prior(mean, logvar, z, log_pz, log_qz), mean",
             "return recon, kl_mc, 2.0 * kl_to_prior(mean, logvar, z, log_pz, log_qz), mean", METRICS_TESTS),
    Mutation("iwae_example_major",
             "IWAELoss: x, mean, logvar tiled example-major (samples paired with the wrong images)",
             "ops/iwae_loss.py",
             "targets = tf.tile(x, tf.concat([[self.k], tf.ones([tf.rank(x) - 1], tf.int32)], axis=0))\n"
             "        tiled = [tf.tile(t, [self.k, 1]) for t in (mean, logvar)]",
             "targets = tf.repeat(x, self.k, axis=0)\n"
             "        tiled = [tf.repeat(t, self.k, axis=0) for t in (mean, logvar)]",
             ("tests/ops/test_iwae_loss.py", )),
    Mutation("resume_noise_weights", "resume: model weights replaced by noise right after the restore",
             "pipeline_vae/resume.py", "        self.system.total_epochs = total\n",
             "        self.system.total_epochs = total\n        import numpy as np\n"
             "        for model in self.system.network.models:\n"
             "            model.set_weights([np.random.normal(size=w.shape) for w in model.get_weights()])\n",
             ("tests/pipeline_vae/test_resume.py::test_resume_restores_the_checkpoint_arrays_and_the_loss_level", )),
    # More, across ops, metrics, inference, plots, traces, resume and the ablation runner.
    Mutation("reparameterize_variance_as_std",
             "reparameterization (ReparameterizeOp, the evaluation): exp(logvar) as the standard deviation",
             "ops/densities.py", "return eps * tf.exp(logvar * 0.5) + mean", "return eps * tf.exp(logvar) + mean",
             ("tests/ops/test_reparameterize.py", ) + METRICS_TESTS),
    Mutation("kl_logvar_sign", "closed-form KL: + logvar instead of - logvar", "ops/densities.py",
             "tf.exp(logvar) + tf.square(mean) - 1.0 - logvar", "tf.exp(logvar) + tf.square(mean) - 1.0 + logvar",
             ("tests/ops/test_densities.py", "tests/ops/test_analytic_kl_loss.py")),
    Mutation("split_swapped", "SplitOp: mean and logvar swapped", "ops/split.py",
             "mean, logvar = tf.split(data, num_or_size_splits=2, axis=1)",
             "logvar, mean = tf.split(data, num_or_size_splits=2, axis=1)", ("tests/ops/test_split.py", )),
    Mutation("kl_warmup_off_by_one", "KLWarmupLoss: counts the current epoch as done", "ops/kl_warmup_loss.py",
             'done = tf.cast(state["epoch"], tf.float32) - 1.0', 'done = tf.cast(state["epoch"], tf.float32)',
             ("tests/ops/test_kl_warmup_loss.py", )),
    Mutation("example_mean_unweighted", "ExampleMean: a partial batch counts as much as a full one",
             "pipeline_vae/traces.py", "self.total += float(value) * n", "self.total += float(value) * 100",
             ("tests/pipeline_vae/test_traces.py", )),
    Mutation("inference_threshold_ignored", "CVAE.load: binarizes at 0.5 whatever the run trained with",
             "pipeline_vae/inference.py",
             "likelihood=config.likelihood, binarize_threshold=config.binarize_threshold,",
             "likelihood=config.likelihood, binarize_threshold=0.5,",
             ("tests/pipeline_vae/test_fit_variants.py::test_cvae_load_uses_the_threshold_the_run_trained_with", )),
    Mutation("inference_sample_variance_as_std", "CVAE.sample_latent: exp(logvar) as the standard deviation",
             "pipeline_vae/inference.py", "clamp_logvar(tf.constant(logvar))", "clamp_logvar(tf.constant(2 * logvar))",
             ("tests/pipeline_vae/test_inference.py", )),
    Mutation("manifold_rows_not_flipped", "latent manifold: z[1] rising down the rows, labels saying falling",
             "pipeline_vae/plots.py", "for z2 in values[::-1] for z1 in values", "for z2 in values for z1 in values",
             ("tests/pipeline_vae/test_plots.py", )),
    Mutation("scatter_colours_shifted", "latent scatter: colours shifted by one image", "pipeline_vae/plots.py",
             'c=labels, cmap="tab10"', 'c=np.roll(labels, 1), cmap="tab10"', ("tests/pipeline_vae/test_plots.py", )),
    Mutation("resume_forgets_new_epochs", "resume: a larger --epochs does not extend the run", "pipeline_vae/resume.py",
             "        self.system.total_epochs = total\n", "",
             ("tests/pipeline_vae/test_resume.py::test_sigkill_mid_epoch_then_the_same_command_resumes", )),
    Mutation("runner_evaluates_unbinarized", "ablation runner: the common evaluation skips the binarization",
             "pipeline_vae/ablation/trial.py", "DEFAULT_LIKELIHOOD, MNIST_BINARIZE_THRESHOLD,  # binarization",
             "DEFAULT_LIKELIHOOD, None,  # binarization",
             ("tests/pipeline_vae/ablation/test_runner.py::"
              "test_two_variants_two_seeds_then_a_repeat_skips_every_finished_run", )),
    Mutation("report_population_sd", "ablation table: population sd instead of the sample sd over seeds",
             "pipeline_vae/ablation/report.py", "from statistics import mean, stdev",
             "from statistics import mean, pstdev as stdev", ("tests/pipeline_vae/ablation/test_runner.py::"
                                                             "test_two_variants_two_seeds_then_a_repeat_skips_every_"
                                                             "finished_run", )),
    Mutation("run_lock_keeps_pid", "run lock: a clean release leaves the pid, so the next run reports a take-over",
             "pipeline_vae/run_lock.py", "            os.ftruncate(self._fd, 0)\n", "",
             ("tests/pipeline_vae/test_run_lock.py", )),
    Mutation("early_stop_patience_plus_one", "--early-stop: one more epoch of patience than asked for",
             "pipeline_vae/builders.py", "EarlyStopping(monitor=METRIC, patience=config.early_stop, compare=\"max\")",
             "EarlyStopping(monitor=METRIC, patience=config.early_stop + 1, compare=\"max\")",
             ("tests/pipeline_vae/test_cli.py::test_early_stop_ends_the_run_and_lr_plateau_divides_the_rate_by_ten", )),
    Mutation("lr_plateau_raises_small_rate", "--lr-plateau: FE's 1e-6 floor raises a smaller starting rate",
             "pipeline_vae/builders.py",
             "min_lr=min(FE_MIN_LR, float(tf.keras.backend.get_value(model.optimizer.learning_rate))))",
             "min_lr=FE_MIN_LR)", ("tests/pipeline_vae/test_builders.py", )),
    # Issue 12: the likelihoods, the data sources and the run's configuration.
    Mutation("logistic_half_bin_doubled", "discretized logistic: each level owns a bin twice as wide",
             "ops/densities.py", "half = 0.5 / (bins - 1)", "half = 1.0 / (bins - 1)",
             ("tests/ops/test_likelihoods.py", )),
    Mutation("gaussian_floor_lowered", "Gaussian likelihood: log-scale floored at -7 instead of one grey level",
             "ops/densities.py", "GAUSSIAN_LOG_SCALE_MIN = -math.log(255.0)", "GAUSSIAN_LOG_SCALE_MIN = -7.0",
             ("tests/ops/test_likelihoods.py::test_gaussian_uses_a_sigmoid_location_and_a_clipped_log_scale", )),
    Mutation("loss_ignores_likelihood", "loss ops: always the Bernoulli, whatever likelihood they were given",
             "ops/cvae_loss.py", "self.likelihood = get_likelihood(likelihood)",
             "self.likelihood = get_likelihood(\"bernoulli\")", ("tests/ops/test_likelihoods.py", )),
    Mutation("folder_labels_shifted", "image folders: class subfolders numbered from 1",
             "pipeline_vae/data/sources.py", "index = {name: i for i, name in enumerate(names)}",
             "index = {name: i for i, name in enumerate(names, 1)}", ("tests/pipeline_vae/data/test_sources.py", )),
    Mutation("split_leaks_test_images", "seeded split: one test image also in the training split",
             "pipeline_vae/data/sources.py", "return np.sort(order[n_test:]), order[:n_test]",
             "return np.sort(order[n_test - 1:]), order[:n_test]", ("tests/pipeline_vae/data/test_sources.py", )),
    Mutation("grey_from_red_channel", "colour files converted to grey by keeping the red channel",
             "pipeline_vae/data/decode.py", "lambda: tf.image.rgb_to_grayscale(image[..., :3])",
             "lambda: image[..., :1]",
             ("tests/pipeline_vae/data/test_sources.py::test_rgb_files_stay_rgb_and_convert_to_grey_on_request", )),
    Mutation("legacy_config_threshold_ignored", "run folders from before RunConfig: recorded threshold ignored",
             "pipeline_vae/run_config.py", 'threshold = obj.get("binarize_threshold") if binarized else None',
             "threshold = None",
             ("tests/pipeline_vae/test_inference.py::test_a_run_folder_from_before_run_configs_loads_as_mnist", )),
    # Issue 13: ablations on Ray, faults, tracking.
    Mutation("trial_record_not_reread", "a trial that waited for another command's lock trains again",
             "pipeline_vae/ablation/trial.py", "        if record is not None:  # finished by another process",
             "        if False:  # finished by another process",
             ("tests/pipeline_vae/ablation/test_ray_executor.py::"
              "test_two_commands_on_one_out_train_each_trial_once", )),
    Mutation("ray_no_retries", "Ray executor: a failed trial is not retried",
             "pipeline_vae/ablation/ray_executor.py", "failure_config=tune.FailureConfig(max_failures=max_failures)",
             "failure_config=tune.FailureConfig(max_failures=0)",
             ("tests/pipeline_vae/ablation/test_ray_executor.py::"
              "test_a_killed_trial_worker_is_retried_and_resumes_from_its_last_epoch", )),
    Mutation("seeded_resume_refused", "seeded runs (ablation trials) cannot resume: FE's check left in",
             "pipeline_vae/resume.py", "seed, fe.fe_deterministic_seed = fe.fe_deterministic_seed, None",
             "seed = fe.fe_deterministic_seed",
             ("tests/pipeline_vae/test_resume.py::test_a_seeded_run_checkpoints_and_resumes", )),
    Mutation("local_threads_ignored", "local executor: --cpus-per-trial not passed to the trial processes",
             "pipeline_vae/ablation/local_executor.py", "               **thread_env(cpus_per_trial))",
             "               **thread_env(None))",
             ("tests/pipeline_vae/ablation/test_ray_executor.py::"
              "test_ray_gives_the_local_table_and_tracks_a_parent_run_with_a_child_per_trial", )),
    Mutation("tracker_step_off_by_one", "trackers: training values logged one step late",
             "pipeline_vae/tracking/base.py", '            self._log(data.read_logs(), "train", step)',
             '            self._log(data.read_logs(), "train", step + 1)',
             ("tests/pipeline_vae/tracking/test_trackers.py::"
              "test_a_tracked_training_run_matches_its_csv_log_and_resumes_into_the_same_runs", )),
    Mutation("tensorboard_epoch_only", "--tensorboard: train scalars per epoch only (FE's update_freq='epoch')",
             "pipeline_vae/traces.py", 'update_freq=log_steps or "epoch"', 'update_freq="epoch"',
             ("tests/pipeline_vae/test_cli.py::"
              "test_tensorboard_events_hold_the_logged_elbo_and_no_resume_writes_no_checkpoint", )),
    Mutation("nan_named_at_detection", "StopOnNaN: names the step it checked at, not the first bad step",
             "pipeline_vae/traces.py", "self.stopped_at = (self.system.epoch_idx, step, key)",
             "self.stopped_at = (self.system.epoch_idx, self.system.global_step, key)",
             ("tests/pipeline_vae/test_resume.py::test_a_nan_is_found_at_the_next_check_and_named_at_its_first_step",
              )),
    Mutation("nan_not_checked_at_epoch_end", "StopOnNaN: no check at the epoch's end (a late NaN reaches the "
             "checkpoint)", "pipeline_vae/traces.py", "    def on_epoch_end(self, data: Data) -> None:\n        "
             "self._check()\n", "    def on_epoch_end(self, data: Data) -> None:\n",
             ("tests/pipeline_vae/test_resume.py::test_a_nan_stops_before_eval_and_keeps_the_best_model_and_checkpoint",
              )),
    Mutation("tfdata_pipeline_collects", "tf.data Pipeline: FE's per-epoch gc.collect() back",
             "pipeline_vae/builders.py", "        self.ctx_loader = None\n        self.ctx_lock.release()",
             "        self.ctx_loader = None\n        import gc\n        gc.collect()\n        self.ctx_lock.release()",
             ("tests/pipeline_vae/test_builders.py::test_only_fes_own_loader_collects_garbage_after_an_epoch", )),
    Mutation("tfdata_pipeline_keeps_lock", "tf.data Pipeline: the lock is not released after an epoch",
             "pipeline_vae/builders.py", "        self.ctx_loader = None\n        self.ctx_lock.release()",
             "        self.ctx_loader = None",
             ("tests/pipeline_vae/test_builders.py::test_only_fes_own_loader_collects_garbage_after_an_epoch", )),
    Mutation("quick_exit_skips_handlers", "console script exit: atexit handlers not run",
             "pipeline_vae/cli.py", "    atexit._run_exitfuncs()", "    pass",
             ("tests/pipeline_vae/test_cli.py::"
              "test_the_console_scripts_quick_exit_keeps_code_handlers_output_and_running_threads", )),
    Mutation("quick_exit_kills_threads", "console script exit: a running non-daemon thread is cut off",
             "pipeline_vae/cli.py", "t.is_alive() and not t.daemon", "t.is_alive() and False",
             ("tests/pipeline_vae/test_cli.py::"
              "test_the_console_scripts_quick_exit_keeps_code_handlers_output_and_running_threads", )),
    # Issue 15: the learning-rate schedule, the presets, publishing and restoring ablation records.
    Mutation("cosine_floor_tenth", "cosine schedule: decays to a tenth of the rate, not a hundredth",
             "pipeline_vae/builders.py", "init_lr=init_lr, min_lr=init_lr / 100)",
             "init_lr=init_lr, min_lr=init_lr / 10)",
             ("tests/pipeline_vae/test_builders.py::test_cosine_schedule_sets_each_epochs_rate_for_both_models", )),
    Mutation("cosine_one_model", "cosine schedule: only the first model's rate follows it",
             "pipeline_vae/builders.py", "config.epochs))\n                   for model in graph.models]",
             "config.epochs))\n                   for model in graph.models[:1]]",
             ("tests/pipeline_vae/test_builders.py::test_cosine_schedule_sets_each_epochs_rate_for_both_models", )),
    Mutation("later_setting_in_key", "trial keys: a setting added later changes every existing record's key",
             "pipeline_vae/ablation/trial.py", 'LATER_SETTINGS = ("lr_schedule", "protocol",',
             'LATER_SETTINGS = ("protocol",',
             ("tests/pipeline_vae/ablation/test_runner.py::test_run_key_changes_only_with_what_the_run_depends_on", )),
    Mutation("restore_ignores_key", "restore: a published record of an edited variant is written back",
             "pipeline_vae/ablation/publish.py", 'if run is None or run.get("key") != trial.key or',
             "if run is None or", ("tests/pipeline_vae/ablation/test_publish.py", )),
    Mutation("preset_settings_dropped", "presets: the preset's settings do not reach get_estimator",
             "pipeline_vae/presets.py", "return build(**{**settings_of(name), **overrides})",
             "return build(**overrides)",
             ("tests/apphub/test_presets.py", )),
    Mutation("code_version_never_dirty", "trial records: a checkout with edited files passes for its commit",
             "pipeline_vae/ablation/trial.py", 'return sha + ("+dirty" if dirty else "") if sha else None',
             "return sha or None",
             ("tests/pipeline_vae/ablation/test_runner.py::"
              "test_code_version_names_the_checkout_and_says_when_it_is_dirty", )),
    # Issue 15: a long IW evaluation continues after an interruption.
    Mutation("iw_resume_fresh_noise", "resumed IW bound: the noise generator starts over instead of going on",
             "pipeline_vae/metrics.py", "    rng.reset(state)\n", "",
             ("tests/pipeline_vae/test_metrics.py::test_an_interrupted_iw_bound_continues_to_the_same_numbers", )),
    Mutation("iw_resume_drops_values", "resumed IW bound: the saved values are not put back",
             "pipeline_vae/metrics.py", "    out[:done] = values\n", "",
             ("tests/pipeline_vae/test_metrics.py::test_an_interrupted_iw_bound_continues_to_the_same_numbers", )),
    Mutation("iw_resume_key_without_seed", "resumed IW bound: a partial evaluation of another seed is continued",
             "pipeline_vae/metrics.py", 'k={k} seed={seed} max_decodes', "k={k} max_decodes",
             ("tests/pipeline_vae/test_metrics.py::test_a_partial_iw_bound_of_another_evaluation_is_not_used", )),
    Mutation("histogram_normaliser", "no-latent reference: the per-pixel histogram does not sum to 1",
             "pipeline_vae/baselines.py", "np.log(len(train) + 256 * alpha)", "np.log(len(train) + 255 * alpha)",
             ("tests/pipeline_vae/test_baselines.py::test_pixel_histogram_by_hand", )),
    Mutation("level_cells_at_levels", "logistic read on the used levels: cells end at the next level, not midway",
             "pipeline_vae/baselines.py", "(levels[:-1] + levels[1:].astype(np.float64)) / 2.0",
             "levels[1:].astype(np.float64)",
             ("tests/pipeline_vae/test_baselines.py::test_logistic_on_all_values_and_on_the_used_levels_by_hand", )),
    # Issue 24: one resolve step, the run folder's stamps, the CLI as users type it.
    Mutation("resolve_mnist_not_binarized", "resolve: MNIST under the Bernoulli is no longer cut at 0.5",
             "pipeline_vae/resolve.py", 'return MNIST_BINARIZE_THRESHOLD if data.kind == "mnist" and',
             'return None if data.kind == "mnist" and',
             ("tests/pipeline_vae/test_one_path.py::test_resolve_applies_the_data_defaults_once", )),
    Mutation("resolve_binary_images_logistic", "resolve: black-and-white images get the logistic, not the Bernoulli",
             "pipeline_vae/resolve.py", 'data.kind == "mnist" or data.binary else', 'data.kind == "mnist" else',
             ("tests/pipeline_vae/test_one_path.py::test_resolve_applies_the_data_defaults_once", )),
    Mutation("resolve_slot_threshold_ignored", "resolve: a Binarize op in the slot does not decide the threshold",
             "pipeline_vae/resolve.py", "threshold = _threshold_of(ops[\"binarize\"])", "pass",
             ("tests/pipeline_vae/test_one_path.py::"
              "test_resolve_lets_the_binarize_slot_decide_the_recorded_threshold", )),
    Mutation("resolve_budget_not_recorded", "resolve: the budget and evaluation settings are not recorded",
             "pipeline_vae/resolve.py", "**{name: values[name] for name in RUN_ONLY})", ")",
             ("tests/pipeline_vae/test_one_path.py::test_resolve_records_the_budget_and_the_evaluation", )),
    Mutation("stamp_not_checked", "run folder: an edited configuration is read without comparing the stamps",
             "pipeline_vae/run_config.py", "if key in stamped and stamped[key] != mine[key]:", "if False:",
             ("tests/pipeline_vae/test_one_path.py::test_an_edited_configuration_is_refused_naming_the_field", )),
    Mutation("stamp_not_written", "run folder: the best models are saved without the run's identity",
             "pipeline_vae/traces.py", "        if config is not None:\n            stamp_model(file, config)\n", "",
             ("tests/pipeline_vae/test_one_path.py::test_an_edited_configuration_is_refused_naming_the_field", )),
    Mutation("argparse_usage_block", "CLI: a bad flag prints argparse's usage block before the error",
             "pipeline_vae/cli.py", "        command = self.prog if", "        self.print_usage(sys.stderr)\n"
             "        command = self.prog if",
             ("tests/pipeline_vae/test_one_path.py::test_argparse_errors_are_one_line_without_the_usage_block", )),
    Mutation("docs_snippet_undefined_name", "README: the inference snippet uses x_test without defining it",
             "README.md", "(x_train, y_train), (x_test, y_test) = pipeline_vae.load_mnist()   # uint8", "# uint8",
             ("tests/test_docs_run.py::test_every_block_of_the_docs_runs", )),
    # Issue 25: a run folder is data.
    Mutation("load_model_from_the_file", "CVAE.load: the file's own architecture (runs a planted Lambda)",
             "pipeline_vae/model_files.py", "    if trust_code:\n", "    if True:\n",
             ("tests/pipeline_vae/test_model_files.py", )),
    Mutation("code_layers_unchecked", "model files: Lambda layers counted as Keras built-ins",
             "pipeline_vae/model_files.py", "name not in CODE_LAYERS and ", "",
             ("tests/pipeline_vae/test_model_files.py", )),
    Mutation("checkpoint_room_unchecked", "checkpoint: written on a nearly full disk without checking the room first",
             "pipeline_vae/resume.py", "    if shutil.disk_usage(parent).free < needed:", "    if False:",
             ("tests/pipeline_vae/test_disk_full.py", )),
    Mutation("checkpoint_disk_full_raw", "checkpoint: a full disk while FE writes it is not turned into one line",
             "pipeline_vae/resume.py", "            if not is_disk_full(err):\n                raise\n",
             "            raise\n", ("tests/pipeline_vae/test_disk_full.py", )),
    Mutation("model_saved_straight_to_disk", "best model: HDF5 written by h5py onto the disk (not built in memory)",
             "pipeline_vae/traces.py", "    memory = io.BytesIO()", "    memory = path + '.partial'",
             ("tests/pipeline_vae/test_disk_full.py", "tests/pipeline_vae/test_traces.py")),
    Mutation("checkpoint_signature_not_compared", "resume: a checkpoint file that differs from its signature is read",
             "pipeline_vae/signing.py", "        if not hmac.compare_digest(_mac(key, rel, path), macs[rel]):",
             "        if False:", ("tests/pipeline_vae/test_signing.py", )),
    Mutation("checkpoint_not_verified", "resume: get_estimator's RestoreWizard reads the checkpoint unverified",
             "pipeline_vae/resume.py", "            verify_checkpoint(self.directory)", "            pass",
             ("tests/pipeline_vae/test_signing.py::test_get_estimator_refuses_a_planted_checkpoint_too", )),
    Mutation("train_log_unchecked_on_resume", "train: a damaged train_log.csv is found only inside FE's epoch",
             "pipeline_vae/cli.py", "            read_log(os.path.join(args.save_dir, FILES[\"log\"]))",
             "            pass", ("tests/pipeline_vae/test_train_log.py", )),
    Mutation("tracking_server_not_probed", "tracking: a server URI is accepted without asking whether it answers",
             "pipeline_vae/tracking/uri.py", "        if probe:\n", "        if False:\n",
             ("tests/pipeline_vae/tracking/test_uri.py", )),
    Mutation("ray_instance_without_token", "ablate --executor ray: the local instance accepts anyone who connects",
             "pipeline_vae/ablation/ray_executor.py", '    if "RAY_AUTH_MODE" not in os.environ:',
             "    if False:", ("tests/pipeline_vae/ablation/test_ray_executor.py::"
                              "test_the_local_instance_refuses_a_process_without_its_token", )),
    Mutation("family_checked_after_tensorflow", "train: images too small for the conv family refused after TF starts",
             "pipeline_vae/resolve.py", "        check_family(values[\"model\"], values[\"latent_dim\"], widths, "
             "images.image_shape)", "        pass", ("tests/pipeline_vae/test_model_shapes.py", )),
    # Issue 25: the fourteen breaks its probe found that every test let through.
    Mutation("folder_split_labels_lost", "data: class subfolders under train/ and test/ lose their labels",
             "pipeline_vae/data/sources.py", '        y_train, names = _labels(train_files, splits["train"])',
             "        y_train, names = _labels(train_files, folder)", ("tests/pipeline_vae/data/test_sources.py", )),
    Mutation("grey_weights_bgr", "data: RGB to grey with the weights in BGR order", "pipeline_vae/data/sources.py",
             "np.array([0.2989, 0.587, 0.114], np.float32)", "np.array([0.114, 0.587, 0.2989], np.float32)",
             ("tests/pipeline_vae/data/test_sources.py", )),
    Mutation("train_never_shuffled", "data: the training set is never shuffled", "pipeline_vae/data/pipeline.py",
             "    train = split_dataset(data.train, data.image_shape, resize, shuffle=True)",
             "    train = split_dataset(data.train, data.image_shape, resize, shuffle=False)",
             ("tests/pipeline_vae/data/test_sources.py", "tests/pipeline_vae/test_builders.py")),
    Mutation("report_bpd_column_is_the_elbo", "ablation table: the bits/dim column shows the ELBO",
             "pipeline_vae/ablation/report.py", "[_pm(e, bpd, 3)] if with_bpd", '[_pm(e, "elbo_analytic", 3)] if with_bpd',
             ("tests/pipeline_vae/ablation/test_report.py", )),
    Mutation("report_elbo_ranked_worst_first", "ablation table: ranked worst-first when iw_samples is 0",
             "pipeline_vae/ablation/report.py", "    return sorted(summary, key=lambda e: -e[rank] if",
             '    return sorted(summary, key=lambda e: (e[rank] if rank == "elbo_analytic_mean" else -e[rank]) if',
             ("tests/pipeline_vae/ablation/test_report.py", )),
    Mutation("atomic_temp_in_system_tmp", "atomic writes: the temporary file in the system temp folder (the rename is "
             "then not atomic across file systems)", "pipeline_vae/atomic.py", 'suffix=".tmp", dir=folder)',
             'suffix=".tmp", dir=None)', ("tests/pipeline_vae/test_atomic.py", )),
    Mutation("generate_uniform", "CVAE.generate: decodes uniform draws instead of N(0, I)", "pipeline_vae/inference.py",
             "        eps = rng.standard_normal((int(n), self.noise_dim)).astype(np.float32)",
             "        eps = rng.uniform(size=(int(n), self.noise_dim)).astype(np.float32)",
             ("tests/pipeline_vae/test_inference.py", )),
    Mutation("pca_not_centred", "latent scatter: PCA without centring", "pipeline_vae/plots.py",
             "    centred = points - points.mean(axis=0)", "    centred = points",
             ("tests/pipeline_vae/test_plots.py", )),
    Mutation("evaluate_data_drops_the_run_settings", "evaluate --data: the run's image size and split dropped",
             "pipeline_vae/cli.py", "else replace(vae.config.data, data=args.data)",
             "else type(vae.config.data)(data=args.data)",
             ("tests/pipeline_vae/test_one_path.py::test_a_resized_folder_trains_and_evaluates_as_the_readme_types_it", )),
    Mutation("bpd_for_bernoulli_on_grey", "metrics: bits/dim reported for a Bernoulli on grey levels",
             "ops/densities.py", '    if likelihood == "bernoulli" and not binarized:\n        return None\n', "",
             ("tests/ops/test_densities.py", )),
    Mutation("eval_drops_the_last_partial_batch", "training: the logged ELBO and best-model choice use 100 of 130 images",
             "pipeline_vae/builders.py", "eval_steps = math.ceil(len(data.selection) / config.batch_size)",
             "eval_steps = len(data.selection) // config.batch_size", ("tests/pipeline_vae/test_builders.py", )),
    Mutation("training_evaluates_the_test_split", "protocol: the best models are chosen on the test split, not the "
             "validation split", "pipeline_vae/data/pipeline.py", "test = split_dataset(data.selection,",
             "test = split_dataset(data.test,", ("tests/pipeline_vae/test_protocol.py", )),
    Mutation("protocol_cuts_at_0_5", "protocol: training images cut at 0.5 instead of drawn afresh",
             "pipeline_vae/slots.py", "                           if s.dynamic_binarization else",
             "                           if False else", ("tests/pipeline_vae/test_protocol.py", )),
    Mutation("validation_draw_shares_the_test_seed", "protocol: validation images binarized with the test draw's seed",
             "pipeline_vae/data/sources.py", "bernoulli_draw(data.validation.x, seed + 1)",
             "bernoulli_draw(data.validation.x, seed)", ("tests/pipeline_vae/test_protocol.py", )),
    Mutation("validation_also_trained_on", "protocol: the validation images stay in the training split",
             "pipeline_vae/data/sources.py", "    train = Split(x=take(split.x, train_idx),",
             "    train = Split(x=take(split.x, np.arange(len(split))),", ("tests/pipeline_vae/test_protocol.py", )),
    Mutation("papers_mlp_with_relu", "models: the papers' MLP built with relu units",
             "pipeline_vae/models.py", '    return build_mlp_encoder(latent_dim, widths, image_shape, activation="tanh")',
             '    return build_mlp_encoder(latent_dim, widths, image_shape, activation="relu")',
             ("tests/pipeline_vae/test_models.py", )),
    Mutation("mixture_without_its_weights", "densities: the mixture density sums its components (no 1/C)",
             "ops/densities.py", "    return log_mean_exp(log_normal_pdf(z[..., None, :], means, logvars), axis=-1)",
             "    return tf.reduce_logsumexp(log_normal_pdf(z[..., None, :], means, logvars), axis=-1)",
             ("tests/ops/test_priors.py", )),
    Mutation("negative_entropy_drops_the_constant", "densities: E_q[log q] without its 1 + log(2 pi)",
             "ops/densities.py", "    return -0.5 * tf.reduce_sum(1.0 + LOG_2PI + tf.convert_to_tensor(logvar",
             "    return -0.5 * tf.reduce_sum(0.0 + LOG_2PI + tf.convert_to_tensor(logvar",
             ("tests/ops/test_priors.py", )),
    Mutation("standard_prior_of_variance_e", "priors: the standard normal prior with log-variance 1",
             "ops/standard_normal_prior.py", "        return log_normal_pdf(z, 0.0, 0.0)",
             "        return log_normal_pdf(z, 0.0, 1.0)", ("tests/ops/test_priors.py", )),
    Mutation("mixture_prior_swaps_means_and_variances", "priors: the mixture prior reads its parameters swapped",
             "ops/mixture_prior.py", "        return means[0], clamp_logvar(logvars[0])",
             "        return logvars[0], clamp_logvar(means[0])", ("tests/ops/test_priors.py", )),
    Mutation("vamp_prior_splits_the_wrong_way", "priors: the VampPrior reads the encoder's log-variance as its mean",
             "ops/vamp_prior.py", "        mean, logvar = tf.split(", "        logvar, mean = tf.split(",
             ("tests/ops/test_priors.py", )),
    Mutation("iw_bound_ignores_the_learned_prior", "evaluate: the IW bound scores z under N(0, I), not the run's prior",
             "pipeline_vae/metrics.py", "log_importance_weights(log_px, z, means, logvars, self.log_prior(z, extra), log_qz)",
             "log_importance_weights(log_px, z, means, logvars, None, log_qz)",
             ("tests/pipeline_vae/test_prior_slot.py", )),
    Mutation("loss_not_given_the_prior", "graph: the loss keeps N(0, I) although the prior slot is learned",
             "pipeline_vae/slots.py", "            op.bind_prior(priors[-1].outputs[0])", "            pass",
             ("tests/pipeline_vae/test_prior_slot.py", )),
    Mutation("loss_drops_log_pz", "losses: the inputs after the five (log p(z), log q(z|x)) are read but not used",
             "ops/cvae_loss.py", "        densities = dict(zip(self.density_roles, data[5:]))",
             "        densities = {}",
             ("tests/pipeline_vae/test_prior_slot.py", )),
    Mutation("analytic_kl_ignores_the_prior", "losses: the closed-form KL to N(0, I) used under a learned prior",
             "ops/densities.py", "    if log_pz is None:\n        return kl_to_standard_normal(mean, logvar)",
             "    if True:\n        return kl_to_standard_normal(mean, logvar)",
             ("tests/pipeline_vae/test_prior_slot.py", )),
    Mutation("generate_ignores_the_learned_prior", "inference: generate decodes N(0, I) draws under a learned prior",
             "pipeline_vae/inference.py",
             "        z = self.prior.sample(tf.constant(eps), tf.constant(rng.random(int(n)), tf.float32))",
             "        z = tf.constant(eps)", ("tests/pipeline_vae/test_prior_slot.py", )),
    Mutation("sample_grid_ignores_the_learned_prior", "training: the sample grids decode N(0, I) under a learned prior",
             "pipeline_vae/traces.py", "        return self.prior.sample(tf.constant(self.z), tf.constant(self.u))",
             "        return tf.constant(self.z)", ("tests/pipeline_vae/test_prior_slot.py", )),
    Mutation("planar_log_det_without_the_derivative", "flows: the planar log-determinant uses tanh, not tanh'",
             "ops/planar_flow.py", "det = 1.0 + (1.0 - tf.square(a)) * tf.reduce_sum(w[k] * u_hat[k])",
             "det = 1.0 + (1.0 - a) * tf.reduce_sum(w[k] * u_hat[k])", ("tests/ops/test_planar_flow.py", )),
    Mutation("planar_step_unconstrained", "flows: u used as given, so a step can fold space",
             "ops/planar_flow.py", "        u_hat = u + (-1.0 + tf.nn.softplus(wu) - wu)",
             "        u_hat = u + 0.0 * (-1.0 + tf.nn.softplus(wu) - wu)", ("tests/ops/test_planar_flow.py", )),
    Mutation("flow_density_adds_the_log_det", "flows: log q_K = log q_0 + log det (the change of variables reversed)",
             "ops/planar_flow.py", "        return [z_k, log_q0 - log_det]", "        return [z_k, log_q0 + log_det]",
             ("tests/ops/test_planar_flow.py", )),
    Mutation("loss_not_given_the_flow", "graph: the loss scores z_K under the Gaussian q_0, not the flow's density",
             "pipeline_vae/slots.py", "            op.bind_posterior(flows[-1].outputs[1])", "            pass",
             ("tests/pipeline_vae/test_flow_slot.py", )),
    Mutation("evaluate_skips_the_flow", "evaluate: the bounds ignore the run's posterior flow",
             "pipeline_vae/metrics.py", "        if self.vae.flow is None:\n            return z, None",
             "        if True:\n            return z, None", ("tests/pipeline_vae/test_flow_slot.py", )),
    Mutation("hierarchical_adds_log_q_z2", "two layers: log q(z2|z1) added instead of subtracted",
             "ops/hierarchical_prior.py", "log_normal_pdf(z2, 0.0, 0.0) - log_normal_pdf(z2, mean2, logvar2)",
             "log_normal_pdf(z2, 0.0, 0.0) + log_normal_pdf(z2, mean2, logvar2)",
             ("tests/ops/test_hierarchical_prior.py", )),
    Mutation("hierarchical_draws_z1_from_the_prior", "two layers: ancestral draws ignore p(z1|z2)",
             "ops/hierarchical_prior.py", "        return reparameterize(mean1, logvar1, eps[:, :-self.upper_latent_dim])",
             "        return eps[:, :-self.upper_latent_dim]", ("tests/ops/test_hierarchical_prior.py", )),
    Mutation("evaluate_reuses_z1_noise_for_z2", "evaluate: the hierarchical prior's z2 drawn with z1's noise",
             "pipeline_vae/metrics.py",
             "        eps, extra = eps[:, :self.vae.latent_dim], eps[:, self.vae.latent_dim:]\n        z = reparameterize",
             "        eps, extra = eps[:, :self.vae.latent_dim], eps[:, :self.vae.noise_dim - self.vae.latent_dim]\n"
             "        z = reparameterize", ("tests/ops/test_hierarchical_prior.py", )),
    Mutation("new_settings_change_published_keys", "ablation: settings added later change every published record's key",
             "pipeline_vae/ablation/trial.py",
             'LATER_SETTINGS = ("lr_schedule", "protocol", "prior", "prior_components", "upper_latent_dim", "flow",',
             'LATER_SETTINGS = ("lr_schedule", ) or ("protocol", "prior", "prior_components", "upper_latent_dim", "flow",',
             ("tests/pipeline_vae/ablation/test_runner.py", )),
    Mutation("interpolate_skips_the_flow", "inference: interpolation decodes q_0's means without the run's flow",
             "pipeline_vae/inference.py",
             "        return self.decode(self._through_flow(tf.constant(points, tf.float32)).numpy())",
             "        return self.decode(points)", ("tests/pipeline_vae/test_flow_slot.py", )),
    Mutation("bpd_without_channels", "metrics: RGB bits/dim 3x too high (channels left out of the dimensions)",
             "pipeline_vae/metrics.py", "    dims = int(np.prod(vae.image_shape))",
             "    dims = int(np.prod(vae.image_shape[:2]))", ("tests/pipeline_vae/test_own_data.py", )),
    Mutation("edited_variant_keeps_old_files", "ablation: an edited variant keeps its old checkpoint and models",
             "pipeline_vae/ablation/trial.py", "    if same:\n        return\n", "    if True:\n        return\n",
             ("tests/pipeline_vae/ablation/test_trial.py", )),
    Mutation("mlflow_summary_at_step_0", "MLflow: the final metrics logged at step 0",
             "pipeline_vae/tracking/mlflow_logger.py", "        self._log_metrics(metrics, self._last_step)",
             "        self._log_metrics(metrics, 0)", ("tests/pipeline_vae/tracking/test_trackers.py", )),
    # Issue 25 (begun): names matched whole.
    Mutation("spec_name_trailing_newline", "spec names: a trailing newline accepted (as `$` with re.match did)",
             "pipeline_vae/ablation/spec.py", 're.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")',
             're.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\\n?")',
             ("tests/pipeline_vae/ablation/test_spec.py::test_names_are_matched_whole", )),
    Mutation("slerp_off_the_arc", "inference: spherical interpolation leaves the great circle (a 1% scale error)",
             "pipeline_vae/inference.py", "np.sin(t * omega) * b) / np.sin(omega)",
             "np.sin(t * omega) * b) / np.sin(omega) * 1.01", ("tests/pipeline_vae/test_explore.py", )),
    Mutation("traverse_reversed", "inference: a traversal sets its unit to the values in reverse order",
             "pipeline_vae/inference.py", "        z[:, unit] = values", "        z[:, unit] = values[::-1]",
             ("tests/pipeline_vae/test_explore.py", )),
    Mutation("unit_kl_without_the_constant", "explore: per-unit KL without its -1 (every unit 0.5 nat too high)",
             "pipeline_vae/explore.py", "np.exp(logvar) - 1.0 - logvar", "np.exp(logvar) - logvar",
             ("tests/pipeline_vae/test_explore.py", )),
    Mutation("per_image_elbo_takes_the_best_draw", "metrics: a per-image ELBO that keeps its best draw, not the mean",
             "pipeline_vae/metrics.py", ".astype(np.float64).mean(axis=0)", ".astype(np.float64).max(axis=0)",
             ("tests/pipeline_vae/test_explore.py", )),
    Mutation("traversal_rows_by_least_kl", "explore: traversals and units ordered by the smallest KL first",
             "pipeline_vae/explore.py", "    order = np.argsort(-kl, kind=\"stable\")\n    elbo",
             "    order = np.argsort(kl, kind=\"stable\")\n    elbo", ("tests/pipeline_vae/test_explore.py", )),
    Mutation("log_misses_the_epochs_last_step", "train log: the loss curve stops at the last multiple of log_steps",
             "pipeline_vae/traces.py",
             "        if self.system.mode == \"train\" and logged and last is not None and step % logged != 0 and step != 1:",
             "        if False:", ("tests/pipeline_vae/test_traces.py", )),
    Mutation("curves_clip_their_labels", "plots: the training curves' fixed axes push the y label off the canvas",
             "pipeline_vae/plots.py",
             "    fig = Figure(figsize=(10, 4), layout=\"constrained\")\n    left, right = fig.subplots(1, 2)",
             "    fig = Figure(figsize=(10, 4))\n"
             "    left, right = fig.add_axes((0.07, 0.13, 0.4, 0.77)), fig.add_axes((0.57, 0.13, 0.4, 0.77))",
             ("tests/pipeline_vae/test_plots.py", )),
    Mutation("single_point_on_a_wide_axis", "plots: a lone ELBO point on matplotlib's default range",
             "pipeline_vae/plots.py", "    if len(set(values)) != 1:\n        return",
             "    if len(set(values)) != 0:\n        return", ("tests/pipeline_vae/test_plots.py", )),
    Mutation("format_ignored", "plots: every figure written as PNG whatever --format says",
             "pipeline_vae/plots.py", "        fig.savefig(tmp, format=fmt, dpi=dpi)",
             "        fig.savefig(tmp, format=\"png\", dpi=dpi)", ("tests/pipeline_vae/test_plots.py", )),
    Mutation("export_skips_the_preprocessing", "export: the SavedModel encodes grey images the run binarized",
             "pipeline_vae/export.py", "            if not isinstance(op, Rescale):  # the inputs are scaled already",
             "            if False:", ("tests/pipeline_vae/test_export.py", )),
    Mutation("export_sample_noise_reseeded", "export: `sample` draws its noise at another seed than documented",
             "pipeline_vae/export.py",
             "        eps = tf.random.stateless_normal(tf.stack([n, self._vae.noise_dim]), seed=tf.stack([seed, 0]))",
             "        eps = tf.random.stateless_normal(tf.stack([n, self._vae.noise_dim]), seed=tf.stack([seed, 1]))",
             ("tests/pipeline_vae/test_export.py", )),
    Mutation("export_elbo_best_draw", "export: the `elbo` signature keeps the best draw, not the mean",
             "pipeline_vae/export.py", '        return {"elbo": tf.reduce_mean(self._evaluator.log_weights(x, eps), axis=0)}',
             '        return {"elbo": tf.reduce_max(self._evaluator.log_weights(x, eps), axis=0)}',
             ("tests/pipeline_vae/test_export.py", )),
    Mutation("served_mean_and_logvar_swapped", "serving: the MLflow model answers logvar as the mean",
             "pipeline_vae/serving.py", '        return {"mean": out["mean"].numpy(), "logvar": out["logvar"].numpy()}',
             '        return {"mean": out["logvar"].numpy(), "logvar": out["mean"].numpy()}',
             ("tests/pipeline_vae/test_export.py", )),
    Mutation("follow_up_at_step_0", "tracking: a later command's numbers logged at step 0, not the run's last step",
             "pipeline_vae/tracking/base.py", "        tracker._last_step = step", "        tracker._last_step = 0",
             ("tests/pipeline_vae/tracking/test_trackers.py", )),
    Mutation("follow_up_skips_mlflow", "tracking: the later commands leave the training run's MLflow run out",
             "pipeline_vae/tracking/base.py", '    if isinstance(ids.get("mlflow"), dict) and ids["mlflow"].get("run_id"):',
             '    if isinstance(ids.get("mlflow"), list) and ids["mlflow"].get("run_id"):',
             ("tests/pipeline_vae/tracking/test_trackers.py", )),
    Mutation("tracked_lr_only_with_a_schedule", "tracking: the learning rate logged only when a schedule logs it",
             "pipeline_vae/tracking/base.py", '        if self.system.mode == "train":  # each model\'s learning rate',
             '        if False:  # each model\'s learning rate', ("tests/pipeline_vae/tracking/test_trackers.py", )),
    Mutation("wandb_pictures_only_in_artifacts", "W&B: pictures kept only in artifacts, never shown as images",
             "pipeline_vae/tracking/wandb_logger.py", "        if pictures:  # W&B shows pictures",
             "        if False:  # W&B shows pictures", ("tests/pipeline_vae/tracking/test_trackers.py", )),
    Mutation("runner_drops_the_learned_prior", "ablation: MNIST trials scored without their learned prior and flow",
             "pipeline_vae/ablation/trial.py",
             "                       config=vae.config, prior=vae.prior, flow=vae.flow)  # (the run's own prior and flow)",
             "                       config=vae.config)",
             ("tests/pipeline_vae/ablation/test_runner.py::test_a_trial_is_evaluated_with_its_own_prior_and_flow", )),
    Mutation("tensorboard_misses_the_epochs_last_step", "TensorBoard: the loss curve stops at the last log step",
             "pipeline_vae/traces.py", "        if (self.system.mode == \"train\" and self.update_freq.is_step and freq and last is not None and step % freq",
             "        if (False and self.update_freq.is_step and freq and last is not None and step % freq",
             ("tests/pipeline_vae/test_cli.py::test_tensorboard_events_hold_the_logged_elbo_and_no_resume_writes_no_checkpoint", )),
    Mutation("tensorboard_without_lr", "TensorBoard: no learning rate without a schedule", "pipeline_vae/traces.py",
             "            rates = [(key, value) for key, value in learning_rates(self.system.network).items() if key not in data]",
             "            rates = []", (TB_TEST, )),
    Mutation("tensorboard_without_sample_grid", "TensorBoard: the sample grids never reach it", "pipeline_vae/traces.py",
             "            if data.get(GRID_KEY) is not None:", "            if False:", (TB_TEST, )),
    Mutation("tensorboard_grid_without_ink", "TensorBoard: the digits' grid drawn white on black, unlike the PNGs",
             "pipeline_vae/traces.py", "    return (1.0 - grid if ink else grid)[None]", "    return grid[None]", (TB_TEST, )),
    Mutation("tensorboard_without_hparams", "TensorBoard: no HParams record of the run's settings and best ELBO",
             "pipeline_vae/traces.py", "        if self.hparams is not None and self.history:", "        if False:",
             (TB_TEST, )),
    Mutation("onnx_decode_file_holds_the_encoder", "ONNX: decode.onnx converted from the encode function",
             "pipeline_vae/export.py", '        for name, function in (("encode", served.encode), ("decode", served.decode)):',
             '        for name, function in (("encode", served.encode), ("decode", served.encode)):',
             ("tests/pipeline_vae/test_export.py", )),
    Mutation("tensorboard_follow_up_skipped", "TensorBoard: evaluate's and explore's numbers and pictures never reach it",
             "pipeline_vae/tracking/base.py", "    board = tensorboard_follow_up(save_dir, command, metrics or {}, files, step)",
             "    board = None", ("tests/pipeline_vae/tracking/test_trackers.py", )),
    Mutation("search_without_asha", "tune: no trial is ever stopped early (ASHA left out)", "pipeline_vae/search/runner.py",
             "            scheduler = FIFOScheduler() if search.scheduler is None else ASHAScheduler(",
             "            scheduler = FIFOScheduler() if True else ASHAScheduler(", ("tests/pipeline_vae/search/test_runner.py", )),
    Mutation("search_forgets_stopped_trials", "tune: a stopped trial leaves no record, and counts as interrupted",
             "pipeline_vae/search/runner.py", "            write_json_atomic(stopped_path(out_dir, ours), {",
             "            (lambda *a: None)(stopped_path(out_dir, ours), {", ("tests/pipeline_vae/search/test_runner.py", )),
    Mutation("search_rerun_replays_the_sampler", "tune: a rerun's sampler has the first driver's seed (the same trials "
             "proposed again)", "pipeline_vae/search/runner.py",
             "space=_space(search), metric=OBJECTIVE, mode=\"max\", seed=search.seed + len(known),",
             "space=_space(search), metric=OBJECTIVE, mode=\"max\", seed=search.seed,", ("tests/pipeline_vae/search/test_runner.py", )),
    Mutation("search_best_is_the_worst", "tune: the trials ranked worst first", "pipeline_vae/search/report.py",
             "    return sorted(rows, key=lambda r: (rank[r[\"state\"]], -(r[\"objective\"] if",
             "    return sorted(rows, key=lambda r: (rank[r[\"state\"]], +(r[\"objective\"] if", ("tests/pipeline_vae/search/test_runner.py", )),
    Mutation("search_op_argument_ignored", "tune: a searched op argument never reaches the op",
             "pipeline_vae/search/spec.py", "                ops[slot][0].args[arg] = value", "                pass",
             ("tests/pipeline_vae/search/test_spec.py", )),
    Mutation("search_restore_ignores_the_definition", "publish_search: a published record restored under a changed "
             "definition", "pipeline_vae/search/publish.py",
             "        if record is not None and record.get(\"key\") == trial.key and read_record(",
             "        if record is not None and read_record(", ("tests/pipeline_vae/search/test_publish.py", )),
    Mutation("search_rerun_on_its_own_seed", "tune: best.yaml re-runs the winner on the search's own seed (its number "
             "repeated, not checked)", "pipeline_vae/search/report.py",
             "    return [search.seed + i for i in range(1, RERUN_SEEDS + 1)]",
             "    return [search.seed + i for i in range(0, RERUN_SEEDS)]", ("tests/pipeline_vae/search/test_publish.py", )),
    Mutation("search_publish_interrupted", "publish_search: an interrupted trial published as a result",
             "pipeline_vae/search/publish.py",
             "    trials = [k for k in known_trials(search, out_dir, data) if k[\"state\"] != \"interrupted\"]",
             "    trials = [k for k in known_trials(search, out_dir, data)]", ("tests/pipeline_vae/search/test_publish.py", )),
    Mutation("mlflow_model_not_logged", "MLflow: the best model is not logged as an MLflow model at the end of training",
             "pipeline_vae/tracking/base.py", "            self.log_model()\n", "",
             ("tests/pipeline_vae/tracking/test_trackers.py", )),
    Mutation("kl_warmup_setting_ignored", "kl_warmup: the setting is recorded but the run trains the loss without "
             "warm-up", "pipeline_vae/slots.py", "    if \"loss\" not in ops and kl_warmup is not None:",
             "    if \"loss\" not in ops and kl_warmup is None and False:",
             ("tests/pipeline_vae/test_kl_warmup_setting.py", )),
    Mutation("literature_preset_drifts", "the literature_vamp preset no longer trains the published vamp variant "
             "(a 10-epoch warm-up)", "pipeline_vae/presets.py", "\"kl_warmup\": 100,", "\"kl_warmup\": 10,",
             ("tests/apphub/test_presets.py", )),
    Mutation("train_time_last_attempt_only", "ablation tables: a resumed trial's training time counts only its "
             "last attempt again", "pipeline_vae/ablation/report.py",
             "    value = row.get(\"train_epoch_seconds\")\n", "    value = None\n",
             ("tests/pipeline_vae/ablation/test_report.py", )),
    Mutation("train_commits_last_only", "ablation records: a resumed trial names only the code that finished it",
             "pipeline_vae/ablation/trial.py",
             "\"train_commits\": list(dict.fromkeys(str(a.get(\"commit\") or \"unknown\") for a in attempts))",
             "\"train_commits\": [str(commit or \"unknown\")]",
             ("tests/pipeline_vae/ablation/test_runner.py::test_a_resumed_trial_names_the_code_of_every_attempt", )),
    Mutation("trial_eval_restarts", "ablation trials: an IW bound interrupted at a session's end starts over",
             "pipeline_vae/ablation/trial.py", "show_progress=False, resume_file=partial)", "show_progress=False)",
             ("tests/pipeline_vae/ablation/test_runner.py::"
              "test_a_trial_interrupted_while_evaluating_continues_its_iw_bound", )),
    Mutation("iw_partial_ignores_the_prior", "IW bound: a partial file is resumed under another learned prior",
             "pipeline_vae/metrics.py", "    models = [vae.encoder, vae.decoder] + [m for group",
             "    models = [vae.encoder, vae.decoder] + 0 * [m for group",
             ("tests/pipeline_vae/test_prior_slot.py::"
              "test_a_partial_iw_bound_is_not_resumed_under_other_prior_weights", )),
    Mutation("damaged_record_passed_over_silently", "ablation: a damaged record is read as missing and its trial runs "
             "again without a word", "pipeline_vae/ablation/runner.py",
             "            progress.say(f\"{trial.name}: {trouble}; running it again\")", "            pass",
             ("tests/pipeline_vae/ablation/test_runner.py::"
              "test_two_variants_two_seeds_then_a_repeat_skips_every_finished_run", )),
    Mutation("search_damaged_record_passed_over_silently", "tune: a damaged record is read as an interrupted trial "
             "without a word", "pipeline_vae/search/runner.py",
             "\"trouble\": trouble})", "\"trouble\": None})",
             ("tests/pipeline_vae/search/test_runner.py::"
              "test_a_damaged_record_makes_its_trial_interrupted_and_says_why", )),
)


def run(cmd: Sequence[str], cwd: str, env: dict, timeout: Optional[float] = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def copy_tree(dest: str) -> None:
    """Copy the working tree's tracked and untracked-not-ignored files to `dest`."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], ROOT, dict(os.environ))
    if listed.returncode != 0:
        raise SystemExit(f"mutation-check: git ls-files failed: {listed.stderr.strip()}")
    for rel in filter(None, listed.stdout.split("\0")):
        src = os.path.join(ROOT, rel)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))


def pytest(tests: Sequence[str], copy: str, env: dict, timeout: float) -> Tuple[int, List[str], float, str]:
    """Run `tests` in the copy; returns (exit code, failed test ids, seconds, output tail)."""
    start = time.perf_counter()
    try:
        result = run([sys.executable, "-m", "pytest", "-x", "-q", "-rf", "-p", "no:cacheprovider", *tests], copy, env,
                     timeout)
    except subprocess.TimeoutExpired:
        return -1, [], time.perf_counter() - start, "timed out"
    failed = re.findall(r"^FAILED (\S+)", result.stdout, re.M)
    tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
    return result.returncode, failed, time.perf_counter() - start, tail


CAUGHT, MISSED, STALE = "caught", "missed", "stale"
#: pytest's exit codes for "the tests did not run": interrupted (e.g. a collection error), internal error, usage error.
PYTEST_BROKEN = (2, 3, 4)


def classify(code: int, failed: Sequence[str]) -> str:
    """A mutation's verdict from pytest's exit code and failing tests: caught only by a failing test."""
    if code == 1 and failed:
        return CAUGHT
    return STALE if code in PYTEST_BROKEN else MISSED


def import_problem(rel: str, copy: str, env: dict) -> Optional[str]:
    """Why the mutated file `rel` in `copy` does not import (its last error line), or None if it does. A module of
    a package is imported; any other Python file (a script) is compiled."""
    if not rel.endswith(".py"):
        return None
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts = parts[:-1]
    package = os.path.isfile(os.path.join(copy, parts[0], "__init__.py")) if len(parts) > 1 else False
    code = f"import {'.'.join(parts)}" if package else f"import py_compile; py_compile.compile({rel!r}, doraise=True)"
    result = run([sys.executable, "-c", code], copy, env)
    if result.returncode == 0:
        return None
    return (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=None, metavar="NAME", help="run only these mutations")
    parser.add_argument("--report", default=None, metavar="FILE", help="also write the table as Markdown to FILE")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per pytest run (default 900)")
    args = parser.parse_args(argv)
    known = {m.name for m in MUTATIONS}
    unknown = sorted(set(args.only or ()) - known)
    if unknown:
        parser.error(f"unknown mutation(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    chosen = [m for m in MUTATIONS if args.only is None or m.name in args.only]

    # The tree is copied now: name the commit (and whether tracked files differed from it) now, not at the end.
    commit = run(["git", "rev-parse", "--short", "HEAD"], ROOT, dict(os.environ)).stdout.strip()
    dirty = run(["git", "status", "--porcelain", "--untracked-files=no"], ROOT, dict(os.environ)).stdout.strip()
    copy = tempfile.mkdtemp(prefix="pipeline-vae-mutation-")
    try:
        copy_tree(copy)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", )}
        env["PYTHONPATH"] = copy + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        probe = "import ops, pipeline_vae; print(ops.__file__); print(pipeline_vae.__file__)"
        where = run([sys.executable, "-c", probe], copy, env)
        if where.returncode != 0 or not all(line.startswith(copy) for line in where.stdout.split()):
            raise SystemExit(f"mutation-check: the copy's packages are not the ones imported: {where.stdout.strip()} "
                             f"{where.stderr.strip()}")
        stale = {}
        for m in chosen:
            with open(os.path.join(copy, m.path)) as file:
                count = file.read().count(m.old)
            if count != 1:
                stale[m.name] = f"its text occurs {count} times in {m.path}, expected once"
        targets = sorted({t for m in chosen if m.name not in stale for t in m.tests})
        print(f"mutation-check: baseline: {len(targets)} test target(s) on the unmutated copy ...", flush=True)
        code, failed, seconds, tail = pytest(targets, copy, env, args.timeout)
        if code != 0:
            raise SystemExit(f"mutation-check: the targeted tests fail without any mutation (exit {code}):\n{tail}")
        print(f"mutation-check: baseline passed in {seconds:.0f} s", flush=True)

        rows = []
        for i, m in enumerate(chosen, 1):
            if m.name in stale:
                rows.append((m, STALE, [], 0.0))
                print(f"[{i}/{len(chosen)}] {m.name}: STALE ({stale[m.name]})", flush=True)
                continue
            path = os.path.join(copy, m.path)
            with open(path) as file:
                original = file.read()
            with open(path, "w") as file:
                file.write(original.replace(m.old, m.new))
            try:
                problem = import_problem(m.path, copy, env)
                if problem is None:
                    code, failed, seconds, tail = pytest(m.tests, copy, env, args.timeout)
            finally:
                with open(path, "w") as file:
                    file.write(original)
            if problem is not None:
                rows.append((m, STALE, [], 0.0))
                print(f"[{i}/{len(chosen)}] {m.name}: STALE (the mutated copy does not import: {problem})", flush=True)
                continue
            verdict = classify(code, failed)
            rows.append((m, verdict, failed, seconds))
            said = {CAUGHT: f"caught by {failed[0] if failed else ''}", MISSED: f"NOT CAUGHT (pytest exit {code})",
                    STALE: f"STALE (pytest exit {code}: the tests could not run on the mutated copy)"}[verdict]
            print(f"[{i}/{len(chosen)}] {m.name}: {said} ({seconds:.0f} s)", flush=True)
            if verdict != CAUGHT:
                print(tail, flush=True)
    finally:
        shutil.rmtree(copy, ignore_errors=True)

    table = ["| mutation | where | what it breaks | caught | first failing test |", "|---|---|---|---|---|"]
    for m, verdict, failed, _ in rows:
        what = m.what.replace("|", "\\|")  # (a Markdown table cell)
        cell = {CAUGHT: "yes", MISSED: "**no**", STALE: "**stale**"}[verdict]
        table.append(f"| `{m.name}` | `{m.path}` | {what} | {cell} | {'`' + failed[0] + '`' if failed else '-'} |")
    missed = [m.name for m, verdict, _, _ in rows if verdict == MISSED]
    stale_names = [m.name for m, verdict, _, _ in rows if verdict == STALE]
    caught_count = len(rows) - len(missed) - len(stale_names)
    summary = (f"{caught_count} of {len(rows)} mutations caught" +
               (f"; missed: {', '.join(missed)}" if missed else "") +
               (f"; stale (no longer apply; update them): {', '.join(stale_names)}" if stale_names else ""))
    if args.only:
        summary += f" (only {len(rows)} of the {len(MUTATIONS)} were run)"
    print("\n" + "\n".join(table) + "\n\n" + summary)
    if args.report:
        from pipeline_vae.atomic import atomic_path
        text = (f"# Last mutation check\n\n`make mutation-check` on commit `{commit}`"
                f"{' (with uncommitted changes)' if dirty else ''}, {time.strftime('%Y-%m-%d')}: {summary}.\n\n" +
                "\n".join(table) + "\n")
        with atomic_path(args.report) as tmp, open(tmp, "w") as file:
            file.write(text)
        print(f"Saved: {args.report}")
    return 0 if not missed and not stale_names else 1


if __name__ == "__main__":
    sys.exit(main())

"""FastEstimator Traces the builders add: an exact per-example eval mean, a best-model saver that writes full models,
per-epoch sample grids with a GIF, a crash-safe CSV log that survives a resume, a NaN stop that says where, TensorBoard
at the logged steps, and a per-epoch callback (a trial's progress for Ray Tune).
"""
import io
import os
import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Union

import numpy as np
import pandas as pd
import tensorflow as tf
from fastestimator.trace.io.best_model_saver import BestModelSaver
from fastestimator.trace.adapt.terminate_on_nan import TerminateOnNaN
from fastestimator.trace.io.csv_logger import CSVLogger
from fastestimator.trace.io.tensorboard import TensorBoard
from fastestimator.trace.trace import Trace
from fastestimator.util.base_util import is_number
from fastestimator.util.data import Data
from fastestimator.util.traceability_util import traceable

from ops.densities import get_likelihood
from ops.names import DEFAULT_LIKELIHOOD
from pipeline_vae import plots
from pipeline_vae.atomic import atomic_path
from pipeline_vae.tracking.base import learning_rates
from pipeline_vae.train_log import damaged
from pipeline_vae.run_config import RunConfig, stamp_model


def save_full_model(model: tf.keras.Model, path: str, config: Optional[RunConfig] = None) -> str:
    """Save a full Keras model (architecture + weights, no optimizer) as HDF5, atomically (see `atomic_path`).

    The result loads with both `tf.keras.models.load_model(path, compile=False)` and
    `fe.build(..., weights_path=path)`.

    Args:
        model: The model to save.
        path: The destination `.h5` file.
        config: The run's configuration, whose identity is stamped into the file (`run_config.stamp_model`) before
            it is renamed into place.

    Returns:
        `path`.
    """
    import h5py
    logger, level = tf.get_logger(), tf.get_logger().level
    memory = io.BytesIO()  # built in memory: h5py writing to a full disk can crash the process (seen: a segfault)
    with h5py.File(memory, "w") as file, warnings.catch_warnings():
        # HDF5 is chosen on purpose (users' load_model code reads it): silence Keras' "legacy format" notice and TF's
        # "compiled metrics have yet to be built" log line, both about this call only.
        warnings.filterwarnings("ignore", message=".*HDF5 file via `model.save\\(\\)`.*")
        logger.setLevel("ERROR")
        try:
            tf.keras.models.save_model(model, file, include_optimizer=False, save_format="h5")
        finally:
            logger.setLevel(level)
        if config is not None:
            stamp_model(file, config)
    with atomic_path(path) as tmp, open(tmp, "wb") as out:  # plain writes: a full disk is an OSError (DiskFullError)
        out.write(memory.getbuffer())
    return path


@traceable()
class FullModelSaver(BestModelSaver):
    """FE's BestModelSaver, writing the full model as `.h5` (not weights only) through a temporary file and a rename.

    FE 1.7's BestModelSaver writes `model.save_weights(...)`, which `tf.keras.models.load_model` cannot read. This keeps
    its bookkeeping (best value, `since_best_*`, `load_best_final`) and replaces only the write, with
    `save_full_model`. The file is `<save_dir>/<weights_name>.h5` (default `<model_name>_best_<metric>.h5`).

    Args:
        model: A model instance compiled with fe.build.
        save_dir: Folder path into which to save the model.
        metric: Eval metric name to monitor. If None, the model's loss will be used.
        save_best_mode: Can be 'min' or 'max'.
        weights_name: The exact file name (without `.h5`). If None default model prefix will be used.
        load_best_final: Whether to automatically reload the best model (if available) after training.
        config: The run's configuration, stamped into every file written (`save_full_model`).

    Raises:
        ValueError: If `save_best_mode` is an unacceptable string.
    """
    def __init__(self,
                 model: tf.keras.Model,
                 save_dir: str,
                 metric: Optional[str] = None,
                 save_best_mode: str = "min",
                 weights_name: Optional[str] = None,
                 load_best_final: bool = False,
                 config: Optional[RunConfig] = None) -> None:
        self.config = config
        super().__init__(model=model,
                         save_dir=save_dir,
                         metric=metric,
                         save_best_mode=save_best_mode,
                         weights_name=weights_name,
                         load_best_final=load_best_final)

    @property
    def file_path(self) -> str:
        """Where the best model is (or will be) saved."""
        return os.path.join(self.save_dir, self.model_name + ".h5")

    def on_epoch_end(self, data: Data) -> None:
        save_dir, self.save_dir = self.save_dir, None  # the parent updates best/since_best; it must not write
        try:
            super().on_epoch_end(data)
        finally:
            self.save_dir = save_dir
        if self.since_best == 0 and self.save_dir:  # since_best is 0 right after an improvement
            self.model_path = save_full_model(self.model, self.file_path, self.config)
            print(f"FastEstimator-FullModelSaver: Saved model to {self.model_path}")


@traceable()
class ExampleMean(Trace):
    """The exact per-example mean of a value over an epoch, weighting each batch by its size.

    FE's eval log averages per-batch values without weights, which is off when the last batch is partial. This trace
    sums `scale * value * batch_size` (or `scale * sum(value)` for a per-example vector) and divides by the number of
    examples, e.g. `elbo` = -mean(loss) over the whole test set.

    Args:
        inputs: The key to average: a per-batch mean (scalar) or per-example values [B].
        outputs: The key to write the epoch mean to.
        batch_key: A batch key whose first axis gives the batch size (used when the value is a scalar).
        scale: A factor applied to the mean (-1 turns a loss into an ELBO).
        mode: What mode(s) to execute this Trace in. For example, "train", "eval", "test", or "infer".
        ds_id: What dataset id(s) to execute this Trace in.

    Raises:
        ValueError: If no examples were seen in an epoch.
    """
    def __init__(self,
                 inputs: str = "loss",
                 outputs: str = "elbo",
                 batch_key: str = "x",
                 scale: float = -1.0,
                 mode: Union[None, str, Iterable[str]] = "eval",
                 ds_id: Union[None, str, Iterable[str]] = None) -> None:
        super().__init__(inputs=[inputs, batch_key], outputs=outputs, mode=mode, ds_id=ds_id)
        self.scale = scale
        self.total = 0.0
        self.count = 0

    def on_epoch_begin(self, data: Data) -> None:
        self.total, self.count = 0.0, 0

    def on_batch_end(self, data: Data) -> None:
        value = np.asarray(data[self.inputs[0]], dtype=np.float64)
        if value.ndim == 0:
            n = int(np.shape(data[self.inputs[1]])[0])
            self.total += float(value) * n
        else:
            n = value.size
            self.total += float(value.sum())
        self.count += n

    def on_epoch_end(self, data: Data) -> None:
        if self.count == 0:
            raise ValueError(f"ExampleMean: no examples seen for '{self.inputs[0]}' this epoch")
        data.write_with_log(self.outputs[0], self.scale * self.total / self.count)


#: The key under which `SampleGrid` leaves each eval epoch's grid for later traces (`LoggedStepsTensorBoard`).
GRID_KEY = "sample_grid"


def grid_image(images: np.ndarray, ink: bool = True) -> np.ndarray:
    """Images [N, H, W, C] in [0, 1] as one square grid image [1, rows*(H+2)+2, cols*(W+2)+2, C] in [0, 1] (grey
    ink-on-white, as the PNG grids draw them, when `ink`)."""
    side = int(np.ceil(np.sqrt(len(images))))
    grid = np.clip(plots.tile(np.asarray(images, np.float32), side, side), 0.0, 1.0)
    return (1.0 - grid if ink else grid)[None]


@traceable()
class SampleGrid(Trace):
    """Decode the same latent vectors after every evaluation and save the grid, then an animated GIF at the end.

    Writes `save_dir/samples/epoch_000.png` before training (the untrained decoder), one `epoch_NNN.png` per eval
    epoch, and `save_dir/samples.gif` of epochs 0..last at the end of training: the TensorFlow tutorial's `cvae.gif`.
    Each eval epoch's grid is also left in the data, unlogged, as `GRID_KEY` ([1, H', W', C] in [0, 1], see
    `grid_image`) for `LoggedStepsTensorBoard`.

    Args:
        decoder: The decoder model (fe.build), [B, latent_dim] -> the likelihood's parameters [B, H, W, C * params].
        save_dir: The run folder.
        likelihood: The decoder likelihood; the grids show its mean image.
        n: How many digits per grid (a square grid is made).
        seed: Seed of the fixed noise: z ~ N(0, I), or, with a learned `prior`, its draws from that same noise
            (the prior itself changes as it trains).
        prior: The run's `prior` slot op (None: the standard normal).

    Raises:
        ValueError: If `n` is not a positive integer.
    """
    def __init__(self, decoder: tf.keras.Model, save_dir: str, n: int = 16, seed: int = 0,
                 likelihood: str = DEFAULT_LIKELIHOOD, prior: Optional[Any] = None) -> None:
        super().__init__(mode="eval", outputs=GRID_KEY)
        self.likelihood = get_likelihood(likelihood)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"SampleGrid: n must be a positive integer, got {n!r}")
        self.decoder, self.save_dir, self.n, self.seed = decoder, save_dir, n, seed
        rng = np.random.default_rng(seed)
        latent = decoder.input_shape[-1]
        self.z = rng.standard_normal((n, latent if prior is None else prior.noise_size(latent))).astype(np.float32)
        self.u, self.prior = rng.random(n).astype(np.float32), prior
        self.ink = self.likelihood.name == "bernoulli"  # binarized digits: drawn dark on white
        self.last_epoch = 0

    def latents(self) -> tf.Tensor:
        """The latent vectors decoded now: the fixed z, or the prior's draws from the fixed noise (as it is now)."""
        if self.prior is None:
            return tf.constant(self.z)
        return self.prior.sample(tf.constant(self.z), tf.constant(self.u))

    def frame_path(self, epoch: int) -> str:
        """Where the grid of `epoch` goes (0: before training)."""
        return os.path.join(self.save_dir, plots.SAMPLES_DIR, f"epoch_{epoch:03d}.png")

    def _save(self, epoch: int) -> np.ndarray:
        images = self.likelihood.mean(self.decoder(self.latents(), training=False)).numpy()
        plots.plot_sample_grid(images, self.frame_path(epoch), f"epoch {epoch}" if epoch else "before training",
                               ink=self.ink)
        self.last_epoch = epoch
        return images

    def on_begin(self, data: Data) -> None:
        self._save(0)

    def on_epoch_end(self, data: Data) -> None:
        images = self._save(self.system.epoch_idx)
        data.write_without_log(GRID_KEY, grid_image(images, ink=self.ink))

    def on_end(self, data: Data) -> None:
        frames = [self.frame_path(e) for e in range(self.last_epoch + 1) if os.path.exists(self.frame_path(e))]
        path = plots.write_gif(frames, os.path.join(self.save_dir, plots.GIF_FILE))
        print(f"FastEstimator-SampleGrid: Saved {len(frames)} frames to {path}")


@traceable(blacklist=("_last_batch", ))  # a batch's data is not part of the trace's saved state
class AtomicCSVLogger(CSVLogger):
    """FE's CSVLogger (per-epoch and per-`log_steps` rows), writing each update through a temporary file and a rename.

    When a run resumes from a checkpoint (FE's RestoreWizard), the rows logged before it are kept (up to the
    checkpoint, so the re-run epoch is not duplicated) instead of starting an empty log.

    Only for train/eval runs: FE's test-mode branch appends to the existing file, which this does not support.

    Args:
        filename: The CSV file.
        monitor_names: Keys to log; None for everything FE logs.
    """
    def __init__(self, filename: str, monitor_names: Union[None, str, List[str]] = None) -> None:
        super().__init__(filename=filename, monitor_names=monitor_names, mode=("train", "eval"))

    def on_epoch_begin(self, data: Data) -> None:
        super().on_epoch_begin(data)
        self._last_batch: Optional[Data] = None
        # An empty table after training steps means this process resumed a run (RestoreWizard restored the step
        # counter, not this table): take over the rows that run logged. (A flag attribute would not do: FE's
        # RestoreWizard restores simple attributes to their saved values.)
        if self.df_agg is not None and self.df_agg.empty and (self.system.global_step or 0) > 0 and os.path.isfile(
                self.filename):
            self._keep_previous_rows()

    def on_batch_end(self, data: Data) -> None:
        super().on_batch_end(data)
        if self.system.mode == "train":
            self._last_batch = data  # a reference: read (one host sync) only at the epoch's end

    def on_epoch_end(self, data: Data) -> None:
        # FE logs the train loss at step 1 and every `log_steps`-th step: also log the epoch's last step, so the
        # curve reaches the end of training instead of stopping at the last multiple of `log_steps`.
        step, logged = self.system.global_step, self.system.log_steps
        last = getattr(self, "_last_batch", None)
        if self.system.mode == "train" and logged and last is not None and step % logged != 0 and step != 1:
            losses = {key: self._parse_val(last[key]) for key in sorted(self.system.network.get_loss_keys())
                      if key in last}
            if losses:
                for key in losses:
                    if key not in self.df_agg.columns:
                        self.df_agg[key] = ""
                row = {col: "" for col in self.df_agg.columns}
                row.update({"mode": "train", "step": step, "epoch": self.system.epoch_idx, **losses})
                self.df_agg = pd.concat([self.df_agg, pd.DataFrame([row])], ignore_index=True)
        self._last_batch = None
        super().on_epoch_end(data)

    def _keep_previous_rows(self) -> None:
        """Load the log of the interrupted run up to the checkpoint: train rows up to the restored step, eval rows of
        the epochs before the restored one (FE re-runs that epoch's eval after a restore), so no row is duplicated."""
        try:
            old = pd.read_csv(self.filename, dtype=str, keep_default_na=False)
            step, epoch = pd.to_numeric(old["step"]), pd.to_numeric(old["epoch"])
        except (ValueError, KeyError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
            raise damaged(self.filename, " ".join(str(err).split())[:120] or type(err).__name__) from None
        keep = ((old["mode"] == "train") & (step <= self.system.global_step)) | (
            (old["mode"] == "eval") & (epoch < self.system.epoch_idx))
        self.df_agg = pd.concat([old[keep], self.df_agg], ignore_index=True)

    def _save(self) -> None:
        final = self.filename
        with atomic_path(final) as tmp:
            self.filename = tmp
            try:
                super()._save()
            finally:
                self.filename = final


@traceable()
class StopOnNaN(TerminateOnNaN):
    """FE's TerminateOnNaN (stop when a monitored value is NaN or Inf), without a host sync every step, remembering
    where it happened.

    FE's own checks every batch's loss with four eager TensorFlow ops (about 0.7 ms a step here, 3% of an epoch on
    this CPU; on a GPU it also waits for every step to finish). This one keeps each batch's values as they are and
    checks them together every `check_every` steps (FE's log steps wait for the step anyway), and always at the end of
    an epoch, before the checkpoint and the evaluation. A divergence is found at most `check_every - 1` steps late
    (training on with NaN weights changes nothing that is kept), and `stopped_at` still names the first bad step.

    FE stops right after the check, with no eval, so the best-model files keep the last good model and the resume
    checkpoint (ExtendableRestoreWizard skips a stopped epoch) stays at the last complete epoch. Must come before the
    checkpointing trace (the builders put it first).

    Args:
        monitor_names: Keys to watch; None for every loss.
        check_every: Check the kept values every this many batches (1: every batch, as FE does).

    Attributes:
        stopped_at: None, or (epoch, global step, key) of the first non-finite value.

    Raises:
        ValueError: If `check_every` is not a positive integer.
    """
    def __init__(self, monitor_names: Union[None, str, Iterable[str]] = None, check_every: int = 100) -> None:
        super().__init__(monitor_names=monitor_names)
        if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
            raise ValueError(f"StopOnNaN: check_every must be a positive integer, got {check_every!r}")
        self.check_every = check_every
        self.stopped_at: Optional[tuple] = None
        self._pending: List[tuple] = []  # (step, key, value) since the last check; empty at every epoch's end

    def on_batch_end(self, data: Data) -> None:
        self._pending += [(self.system.global_step, key, data[key]) for key in self.monitor_keys if key in data]
        if len(self._pending) >= self.check_every * max(1, len(self.monitor_keys)):
            self._check()

    def on_epoch_end(self, data: Data) -> None:
        self._check()
        if not self.system.stop_training:
            super().on_epoch_end(data)  # the epoch's own values (e.g. an eval mean)
            if self.system.stop_training and self.stopped_at is None:
                key = next(k for k in self.monitor_keys if k in data and not np.all(np.isfinite(np.asarray(data[k]))))
                self.stopped_at = (self.system.epoch_idx, self.system.global_step, key)

    def _check(self) -> None:
        pending, self._pending = self._pending, []
        for step, key, value in pending:
            if not np.all(np.isfinite(np.asarray(value))):
                self.system.stop_training = True
                if self.stopped_at is None:
                    self.stopped_at = (self.system.epoch_idx, step, key)
                print(f"FastEstimator-TerminateOnNaN: NaN Detected in: {key} (epoch {self.system.epoch_idx}, step "
                      f"{step})")
                return


@traceable()
class EpochCallback(Trace):
    """Call `callback(epoch, value)` with an eval metric after every evaluation (e.g. to report a trial's progress to
    Ray Tune). Sorted after the trace that computes `metric`.

    Args:
        callback: Called with (epoch, float value).
        metric: The eval key to pass.
    """
    def __init__(self, callback: Callable[[int, float], None], metric: str = "elbo") -> None:
        super().__init__(inputs=metric, mode="eval")
        self.callback = callback

    def on_epoch_end(self, data: Data) -> None:
        self.callback(int(self.system.epoch_idx), float(data[self.inputs[0]]))


@traceable(blacklist=("_last_batch", ))  # a batch's data is not part of the saved state
class LoggedStepsTensorBoard(TensorBoard):
    """FE's TensorBoard trace, writing the training values at the steps FE logs them (step 1 and every `log_steps`-th,
    as the console and `train_log.csv` show them), and the loss at each epoch's last step (as `train_log.csv` keeps
    it). FE's own writes every `update_freq`-th step only, and with `update_freq="epoch"` nothing but `epoch_time` for
    training. Also, per epoch, each model's learning rate (`<model>_lr`, under train) and `SampleGrid`'s grid (image
    `samples`, under eval); at the end, the run's settings and its best and last ELBO for TensorBoard's HParams
    dashboard (in the `hparams` folder beside `train` and `eval`).

    Args:
        log_dir: Where the event files go.
        log_steps: The Estimator's `log_steps` (0 or None: per epoch only).
        hparams: The run's settings (numbers, strings, booleans; None is written as "None"), e.g.
            `tracking.base.config_params(config)`; None: no HParams record.
        metric: The eval metric whose best and last values the HParams record holds.
    """
    def __init__(self, log_dir: str, log_steps: Optional[int], hparams: Optional[Dict[str, Any]] = None,
                 metric: str = "elbo") -> None:
        super().__init__(log_dir=log_dir, update_freq=log_steps or "epoch", write_graph=False)
        self.hparams, self.metric = hparams, metric
        self.history: Dict[int, float] = {}

    def on_batch_end(self, data: Data) -> None:
        super().on_batch_end(data)
        if (self.system.mode == "train" and self.update_freq.is_step and self.update_freq.freq
                and self.system.global_step == 1 and self.update_freq.freq != 1):
            self.writer.write_scalars(mode="train", step=1, scalars=[(k, v) for k, v in data.items() if is_number(v)])
        if self.system.mode == "train":
            self._last_batch = data  # a reference: read only at the epoch's end

    def on_epoch_end(self, data: Data) -> None:
        # the epoch's last step's loss, as `AtomicCSVLogger` keeps it, when it is no multiple of `log_steps`
        step, freq, last = self.system.global_step, self.update_freq.freq, getattr(self, "_last_batch", None)
        if (self.system.mode == "train" and self.update_freq.is_step and freq and last is not None and step % freq
                and step != 1):
            self.writer.write_scalars(mode="train", step=step, scalars=[
                (key, last[key]) for key in sorted(self.system.network.get_loss_keys()) if key in last])
        self._last_batch = None
        super().on_epoch_end(data)
        if self.system.mode == "train":
            rates = [(key, value) for key, value in learning_rates(self.system.network).items() if key not in data]
            self.writer.write_scalars(mode="train", step=step, scalars=rates)
        if self.system.mode == "eval":
            if data.get(GRID_KEY) is not None:
                self.writer.write_images(mode="eval", step=step, images=[("samples", data[GRID_KEY])])
            if is_number(data.get(self.metric)):
                self.history[step] = float(data[self.metric])

    def on_end(self, data: Data) -> None:
        if self.hparams is not None and self.history:
            from torch.utils.tensorboard import SummaryWriter
            from torch.utils.tensorboard.summary import hparams
            values = {key: "None" if value is None else value for key, value in self.hparams.items()}
            best, last = max(self.history.values()), self.history[max(self.history)]
            metrics = {f"hparams/best_{self.metric}": best, f"hparams/last_{self.metric}": last}
            writer = SummaryWriter(log_dir=os.path.join(self.root_log_dir, self.system.experiment_time, "hparams"))
            try:
                for summary in hparams(values, metrics):
                    writer.file_writer.add_summary(summary)
                for key, value in metrics.items():
                    writer.add_scalar(key, value, global_step=self.system.global_step)
            finally:
                writer.close()
        super().on_end(data)


@traceable()
class SaysWhere(Trace):
    """Says where a run's files go when no folder was given for them: when training begins and when it ends.

    Args:
        save_dir: The (temporary) run folder.
        log: Where the line goes (None: print).
    """
    def __init__(self, save_dir: str, log: Optional[Callable[[str], None]] = None) -> None:
        super().__init__(mode=None)
        self.save_dir = save_dir
        self.log = log or print

    def on_begin(self, data: Data) -> None:
        self.log(f"pipeline-vae: no save_dir given: this run's files go to {self.save_dir}")

    def on_end(self, data: Data) -> None:
        self.log(f"pipeline-vae: the best models, configuration and log are in {self.save_dir} (no save_dir was "
                 "given: pass one to keep them elsewhere)")

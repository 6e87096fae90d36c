"""KL warm-up as a run setting (`kl_warmup`): what a spec's `ops: {loss: {op: KLWarmupLoss, ...}}` builds, reachable
from `pipeline-vae train --kl-warmup`, a preset and a spec's `set:`, so the literature's VampPrior runs with one
command."""
import json

import pytest

from ops import AnalyticKLLoss, KLWarmupLoss
from pipeline_vae.ablation.spec import SpecError, parse_spec
from pipeline_vae.resolve import resolve
from pipeline_vae.slots import graph_for


def _loss_ops(graph):
    return [op for name, op in graph.named_ops if name == "loss"]


def test_the_setting_builds_the_warmup_loss_a_spec_names_as_an_op(small_mnist):
    config, _ = resolve({"kl_warmup": 3, "prior": "vamp", "prior_components": 4}, small_mnist)
    assert config.kl_warmup == 3 and config.loss == "analytic_kl"
    (loss, ) = _loss_ops(graph_for(config))
    assert type(loss) is KLWarmupLoss and loss.warmup_epochs == 3 and loss.beta == 1.0
    assert loss.likelihood.name == "bernoulli" and loss.outputs == ["loss"]
    as_op = {"loss": KLWarmupLoss(warmup_epochs=3)}  # what apphub/ablations/literature.yaml's vamp variant names
    config_op, _ = resolve({"prior": "vamp", "prior_components": 4}, small_mnist, as_op)
    graph_op = graph_for(config_op, as_op)
    assert graph_for(config).describe() == graph_op.describe()
    assert loss.inputs == _loss_ops(graph_op)[0].inputs  # both read the prior's log p(z), bound by the graph:
    assert len(loss.inputs) == 6  # (x, x_logit, mean, logvar, z) and the prior slot's output
    (plain, ) = _loss_ops(graph_for(resolve({}, small_mnist)[0]))
    assert type(plain) is AnalyticKLLoss  # no warm-up unless asked


@pytest.mark.parametrize("raw, ops, message", [
    ({"kl_warmup": 0}, None, "kl_warmup must be a positive integer or None, got 0"),
    ({"kl_warmup": 2.5}, None, "kl_warmup must be a positive integer or None, got 2.5"),
    ({"kl_warmup": 3, "loss": "mc_kl"}, None, "kl_warmup: warm-up weighs the closed-form KL; it needs loss "
                                             "analytic_kl, got mc_kl"),
    ({"kl_warmup": 3}, {"loss": AnalyticKLLoss()}, "kl_warmup: the run's loss slot is set directly"),
])
def test_what_cannot_run_is_refused_in_one_line(raw, ops, message, small_mnist):
    with pytest.raises(ValueError) as err:
        resolve(raw, small_mnist, ops)
    assert message in str(err.value) and "\n" not in str(err.value)


SPEC = """\
name: warm
baseline: plain
seeds: [0]
budget: {epochs: 1, train_steps_per_epoch: 2}
variants:
  - name: plain
  - name: warm
    set: {kl_warmup: 5}
"""


def test_a_spec_sets_it_and_refuses_it_beside_a_loss_op():
    spec = parse_spec(SPEC, "warm.yaml")
    assert spec.variant("warm").settings["kl_warmup"] == 5 and spec.variant("plain").settings["kl_warmup"] is None
    both = SPEC.replace("    set: {kl_warmup: 5}\n", "    set: {kl_warmup: 5}\n    ops:\n"
                        "      loss: {op: BetaVAELoss, args: {beta: 2}}\n")
    with pytest.raises(SpecError) as err:
        parse_spec(both, "warm.yaml")
    assert "warm.yaml" in str(err.value) and "kl_warmup" in str(err.value)


@pytest.mark.slow
def test_the_cli_flag_trains_with_it_and_a_changed_warmup_is_not_resumed(tmp_path, run_cli):
    run = tmp_path / "warm"
    args = ["train", "--save-dir", str(run), "--epochs", "1", "--train-steps-per-epoch", "2", "--log-steps", "0",
            "--model", "mlp", "--latent-dim", "2", "--kl-warmup", "2"]
    result = run_cli(args)
    assert result.returncode == 0, result.stderr
    config = json.loads((run / "cvae_config.json").read_text())
    assert config["kl_warmup"] == 2 and config["slots"]["loss"] == ["KLWarmupLoss"]
    result = run_cli(args[:-1] + ["3", "--epochs", "2"])  # resuming the folder with another warm-up
    assert result.returncode != 0 and result.stderr.count("\n") == 1, result.stderr
    assert "kl_warmup" in result.stderr and "--fresh" in result.stderr, result.stderr
    result = run_cli(args[:-1] + ["0"])
    assert result.returncode != 0 and "--kl-warmup" in result.stderr and "positive integer" in result.stderr

"""Search specs (`pipeline_vae.search.spec`): what a trial of sampled values runs, and each mistake as one line that
names the file, line and entry."""
import pytest

from pipeline_vae.ablation.spec import SpecError
from pipeline_vae.search.spec import parse_search, trial_name

GOOD = """\
name: good
trials: 4
seed: 3
budget: {epochs: 2, train_steps_per_epoch: 3, eval_steps_per_epoch: 1}
base: {model: mlp, widths: [32], batch_size: 50}
ops: {loss: {op: BetaVAELoss, args: {beta: 1.0}}}
search:
  learning_rate: {loguniform: [1.0e-4, 1.0e-2]}
  loss.beta: {uniform: [0.5, 2.0]}
  latent_dim: {choice: [2, 4]}
  widths: {choice: [[32], [64, 32]]}
eval: {iw_samples: 2, n_images: 10}
"""


def test_a_trial_is_the_base_with_its_sampled_settings_and_op_arguments():
    search = parse_search(GOOD, "good.yaml")
    assert search.trials == 4 and search.seed == 3 and search.metric == "elbo"
    assert search.scheduler == {"grace_period": 1, "reduction_factor": 3}  # ASHA's defaults here
    params = {"learning_rate": 0.003, "loss.beta": 1.5, "latent_dim": 4, "widths": [64, 32]}
    variant = search.variant(params)
    assert variant.settings["learning_rate"] == 0.003 and variant.settings["latent_dim"] == 4
    assert variant.settings["widths"] == [64, 32] and variant.settings["model"] == "mlp"
    assert variant.settings["batch_size"] == 50 and "loss" not in variant.settings  # the slot's op is the loss
    (loss, ) = variant.ops["loss"]
    assert loss.op == "BetaVAELoss" and loss.args == {"beta": 1.5}
    assert search.ops["loss"][0].args == {"beta": 1.0}  # the spec's own ops are untouched
    built = variant.build_ops()["loss"][0]
    assert built.beta == 1.5
    spec = search.trial_spec(params)
    assert spec.seeds == [3] and [v.name for v in spec.variants] == [variant.name] == [trial_name(params)]
    assert spec.budget["epochs"] == 2 and spec.eval == {"iw_samples": 2, "n_images": 10}


def test_the_same_values_are_the_same_trial_and_others_are_not():
    a = {"learning_rate": 0.001, "latent_dim": 2}
    assert trial_name(a) == trial_name(dict(reversed(list(a.items()))))
    assert trial_name(a) != trial_name({**a, "latent_dim": 4})
    assert trial_name(a) != trial_name({**a, "learning_rate": 0.0010001})


def test_the_spec_round_trips_through_json():
    search = parse_search(GOOD, "good.yaml")
    again = type(search).from_json(search.to_json())
    params = {"learning_rate": 0.003, "loss.beta": 1.5, "latent_dim": 4, "widths": [64, 32]}
    assert again.variant(params).to_json() == search.variant(params).to_json()
    assert again.to_json() == search.to_json()


@pytest.mark.parametrize("old, new, expected", [
    ("trials: 4", "trials: 0", "good.yaml:2: trials: trials must be a positive integer, got 0"),
    ("  learning_rate: {loguniform: [1.0e-4, 1.0e-2]}", "  learning_rate: {loguniform: [0, 1.0e-2]}",
     "good.yaml:8: search.learning_rate.loguniform: loguniform needs low > 0, got [0, 0.01]"),
    ("  loss.beta: {uniform: [0.5, 2.0]}", "  loss.beta: {uniform: [2.0, 0.5]}",
     "good.yaml:9: search.loss.beta.uniform: expected [low, high] with low < high, got [2.0, 0.5]"),
    ("  loss.beta: {uniform: [0.5, 2.0]}", "  loss.beta: {uniform: [-1.0, 2.0]}",
     "good.yaml:9: search.loss.beta.uniform: BetaVAELoss: "),
    ("  loss.beta: {uniform: [0.5, 2.0]}", "  reparameterize.k: {int: [1, 5]}",
     "good.yaml:9: search.reparameterize.k: 'reparameterize' is not a slot given in `ops`"),
    ("  latent_dim: {choice: [2, 4]}", "  latent_size: {choice: [2, 4]}",
     "good.yaml:10: search.latent_size: unknown run setting 'latent_size'"),
    ("  latent_dim: {choice: [2, 4]}", "  latent_dim: {choice: [2, 0]}", "good.yaml:10: search.latent_dim.choice: "),
    ("  latent_dim: {choice: [2, 4]}", "  latent_dim: {choice: [2, 2]}",
     "good.yaml:10: search.latent_dim.choice: choice has a value twice: [2, 2]"),
    ("  latent_dim: {choice: [2, 4]}", "  latent_dim: {int: [2, 4.5]}",
     "good.yaml:10: search.latent_dim.int: int takes integers, got [2, 4.5]"),
    ("  latent_dim: {choice: [2, 4]}", "  latent_dim: {choice: [2, 4], int: [2, 4]}",
     "good.yaml:10: search.latent_dim: give exactly one of"),
    ("  latent_dim: {choice: [2, 4]}", "  latent_dim: {normal: [2, 4]}",
     "good.yaml:10: search.latent_dim.normal: unknown key 'normal'"),
    ("eval: {iw_samples: 2, n_images: 10}", "eval: {iw_samples: 0, n_images: 10}\nmetric: iw_bound",
     "eval.iw_samples: metric iw_bound needs iw_samples >= 1"),
    ("seed: 3", "seed: 3\nmetric: loss", "good.yaml:4: metric: metric must be one of elbo, iw_bound, got 'loss'"),
    ("seed: 3", "seed: 3\nscheduler: {reduction_factor: 1}",
     "good.yaml:4: scheduler.reduction_factor: reduction_factor must be an integer >= 2, got 1"),
])
def test_each_mistake_names_the_file_line_and_entry(old, new, expected):
    assert old in GOOD
    with pytest.raises(SpecError) as err:
        parse_search(GOOD.replace(old, new), "good.yaml", check_runs=False)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_the_first_configuration_is_built_on_the_data(mnist_path):
    """A configuration the data cannot take (six stride-2 conv layers on 28 x 28 digits) is refused before any
    trial, with the data checked as an ablation variant's."""
    bad = GOOD.replace("base: {model: mlp, widths: [32], batch_size: 50}", "base: {model: conv, batch_size: 50}")
    bad = bad.replace("  widths: {choice: [[32], [64, 32]]}", "  widths: {choice: [[8, 8, 8, 8, 8, 8], [32, 64]]}")
    parse_search(bad, "good.yaml", check_runs=False)  # the structure is fine
    with pytest.raises(SpecError) as err:
        parse_search(bad, "good.yaml")
    assert "the first configuration" in str(err.value) and "conv" in str(err.value) and "\n" not in str(err.value)


def test_the_shipped_searches_are_valid(mnist_path):
    import glob
    import os
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    paths = sorted(glob.glob(os.path.join(root, "apphub", "searches", "*.yaml")))
    assert paths
    for path in paths:
        from pipeline_vae.search.spec import load_search
        search = load_search(path)
        assert search.trials >= 1 and search.dimensions


@pytest.mark.slow
def test_the_cli_checks_a_spec_and_says_a_mistake_in_one_line(tmp_path, run_cli):
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    checked = run_cli(["tune", str(good), "--check"])
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip().endswith(f"{good}: OK: 4 trials of up to 2 epoch(s) over learning_rate, loss.beta, "
                                           'latent_dim, widths; metric elbo; ASHA {"grace_period": 1, '
                                           '"reduction_factor": 3}')
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("{uniform: [0.5, 2.0]}", "{uniform: [0.5]}"))
    refused = run_cli(["tune", str(bad), "--check"])
    assert refused.returncode == 2 and refused.stderr == (
        f"pipeline-vae: error: {bad}:9: search.loss.beta.uniform: expected [low, high] with low < high, got [0.5]\n")
    missing = run_cli(["tune", str(tmp_path / "nothing.yaml")])
    assert missing.returncode != 0 and missing.stderr.count("\n") == 1 and "nothing.yaml does not exist" in \
        missing.stderr

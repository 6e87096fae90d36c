import json

import pytest

from ops import BetaVAELoss, DynamicBinarize
from pipeline_vae.ablation.spec import OPS, Spec, SpecError, load_spec, parse_spec

VALID = """\
name: demo
baseline: static
seeds: [0, 1]
budget: {epochs: 2, train_steps_per_epoch: 10}
base: {latent_dim: 3}
eval: {iw_samples: 10, n_images: 100}
variants:
  - name: static
  - name: dynamic
    ops:
      binarize: {op: DynamicBinarize}
  - name: none
    ops: {binarize: null}
  - name: beta
    ops:
      loss: {op: BetaVAELoss, args: {beta: 4}}
  - name: mlp
    set: {model: mlp, widths: [64, 32], latent_dim: 5}
"""


def test_a_valid_spec_merges_base_settings_and_builds_ops():
    spec = parse_spec(VALID, "demo.yaml")
    assert spec.name == "demo" and spec.baseline == "static" and spec.seeds == [0, 1]
    assert spec.budget == {"epochs": 2, "train_steps_per_epoch": 10, "eval_steps_per_epoch": None}
    assert spec.eval == {"iw_samples": 10, "n_images": 100}
    assert [v.name for v in spec.variants] == ["static", "dynamic", "none", "beta", "mlp"]
    assert spec.variant("static").settings["latent_dim"] == 3 and spec.variant("static").ops == {}
    assert spec.variant("none").build_ops() == {"binarize": None}
    assert isinstance(spec.variant("dynamic").build_ops()["binarize"][0], DynamicBinarize)
    (beta, ) = spec.variant("beta").build_ops()["loss"]
    assert isinstance(beta, BetaVAELoss) and beta.beta == 4.0
    assert "loss" not in spec.variant("beta").settings  # the slot's op replaces the named loss
    assert spec.variant("mlp").settings == {"latent_dim": 5, "batch_size": 100, "learning_rate": 1e-3,
                                            "lr_schedule": None, "model": "mlp", "widths": [64, 32],
                                            "loss": "analytic_kl", "kl_warmup": None, "likelihood": None,
                                            "binarize_threshold": None,
                                            "protocol": "seed", "prior": "standard_normal", "prior_components": 500,
                                            "upper_latent_dim": 50,
                                            "flow": "none", "flow_steps": 10}


def test_json_round_trip_of_the_validated_spec():
    spec = parse_spec(VALID, "demo.yaml")
    again = Spec.from_json(json.loads(json.dumps(spec.to_json())))
    assert again.to_json() == spec.to_json()


def test_the_registry_holds_every_op_of_the_ops_package():
    assert {"CVAELoss", "AnalyticKLLoss", "BetaVAELoss", "KLWarmupLoss", "IWAELoss", "Binarize", "DynamicBinarize",
            "ReparameterizeOp", "DeterministicReparameterizeOp", "MultiSampleReparameterizeOp", "Rescale",
            "SplitOp", "StandardNormalPrior"} == set(OPS)


def _error(text: str, path: str = "spec.yaml") -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(text, path)
    return str(info.value)


@pytest.mark.parametrize("old, new, expected", [
    ("{op: BetaVAELoss, args: {beta: 4}}", "{op: BetaLoss}",
     "spec.yaml:16: variants[3].ops.loss.op: unknown op 'BetaLoss'; known ops: AnalyticKLLoss"),
    ("      loss: {op: BetaVAELoss", "      los: {op: BetaVAELoss",
     "spec.yaml:16: variants[3].ops.los: unknown key 'los'; expected one of rescale, binarize, encode"),
    ("args: {beta: 4}", "args: {betta: 4}",
     "spec.yaml:16: variants[3].ops.loss.args.betta: unknown key 'betta'; expected one of inputs, outputs, beta"),
    ("args: {beta: 4}", "args: {beta: -1}",
     "spec.yaml:16: variants[3].ops.loss.args: BetaVAELoss: BetaVAELoss: beta must be a finite number >= 0"),
    ("set: {model: mlp,", "set: {model: resnet,",
     "spec.yaml:18: variants[4].set.model: model must be one of conv, mlp, mlp_tanh, got 'resnet'"),
    ("set: {model: mlp,", "sett: {model: mlp,",
     "spec.yaml:18: variants[4].sett: unknown key 'sett'; expected one of name, description, ops, set"),
    ("budget: {epochs: 2,", "budget: {epochs: 0,", "spec.yaml:4: budget.epochs: epochs must be a positive integer"),
    ("seeds: [0, 1]", "seeds: [0, 0]", "spec.yaml:3: seeds: seeds must be a non-empty list of distinct integers"),
    ("baseline: static", "baseline: dynamc", "spec.yaml:2: baseline: baseline 'dynamc' is not a variant"),
    ("  - name: mlp", "  - name: beta", "spec.yaml:17: variants[4].name: duplicate variant name 'beta'"),
    ("eval: {iw_samples: 10,", "eval: {iw_samples: 10, k: 3,", "spec.yaml:6: eval.k: unknown key 'k'"),
    ("n_images: 100", "n_images: 1", "spec.yaml:6: eval.n_images: n_images must be an integer >= 2"),
    ("name: demo", "name: my demo", "spec.yaml:1: name: name must be letters, digits"),
    ("    ops: {binarize: null}", "    ops: {split: null}",
     "spec.yaml:13: variants[2].ops: slot 'reparameterize' (ReparameterizeOp) needs key 'mean'"),
])
def test_each_mistake_names_the_file_line_and_entry(old, new, expected):
    assert old in VALID
    assert _error(VALID.replace(old, new, 1)).startswith(expected)


def test_missing_required_key_and_bad_yaml():
    assert _error("name: x\nvariants: [{name: a}]\n") == "spec.yaml:1: (top level): missing required key 'budget'"
    assert _error("name: x\nbudget: {epochs: 1\nvariants: []\n").startswith("spec.yaml:3: not valid YAML")
    assert _error("[1, 2]").startswith("spec.yaml:1: (top level): expected a mapping")


def test_json_specs_get_line_numbers_too(tmp_path):
    spec = {"name": "j", "budget": {"epochs": 1}, "variants": [{"name": "a"}, {"name": "b", "ops": {
        "loss": {"op": "IWAELoss", "args": {"k": 0}}}}]}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec, indent=2))
    with pytest.raises(SpecError, match=r"spec.json:1\d: variants\[1\].ops.loss.args: IWAELoss: .*k must be a positive"):
        load_spec(str(path))
    path.write_text('{"name": "j",,}')
    with pytest.raises(SpecError, match="spec.json:1: not valid JSON"):
        load_spec(str(path))


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="spec file .*nope.yaml does not exist"):
        load_spec(str(tmp_path / "nope.yaml"))


def test_the_shipped_specs_are_valid(tmp_path):
    """Every shipped spec's variants resolve and build on their data (the digits spec's folder exported here)."""
    import glob
    import subprocess
    import sys
    digits = str(tmp_path / "digits")
    subprocess.run([sys.executable, "tools/export_digits.py", digits], check=True, capture_output=True, timeout=120)
    paths = sorted(glob.glob("apphub/ablations/*.yaml"))
    assert len(paths) >= 3
    for path in paths:
        spec = load_spec(path, data=digits if "digits" in path else None)
        assert spec.baseline in [v.name for v in spec.variants]
    with pytest.raises(SpecError, match=r"likelihoods_digits.yaml:\d+: data: .*nope does not exist"):
        load_spec("apphub/ablations/likelihoods_digits.yaml", data=str(tmp_path / "nope"))
    assert load_spec("apphub/ablations/likelihoods_digits.yaml", data=str(tmp_path / "nope"), check_runs=False)


def test_widths_are_checked_against_the_model_family():
    """One stride-2 convolution per width: four do not fit a 28x28 digit (28 -> 13 -> 6 -> 2)."""
    text = VALID.replace("set: {model: mlp, widths: [64, 32], latent_dim: 5}",
                         "set: {model: conv, widths: [8, 16, 32, 64]}")
    assert _error(text).startswith("spec.yaml:18: variants[4].set.widths: conv model: image height 28 is too small "
                                   "for 4 stride-2 convolutions")


def test_names_are_matched_whole():
    """A trailing newline (which `$` would allow) is refused in spec and variant names: it would make a folder with a
    newline in its name and split a row of the table."""
    import json as json_module
    spec = json_module.dumps({"name": "demo", "budget": {"epochs": 1}, "variants": [{"name": "evil\n"}]})
    assert "variants[0].name: name must be letters, digits" in _error(spec, "spec.json")
    spec = json_module.dumps({"name": "demo\n", "budget": {"epochs": 1}, "variants": [{"name": "ok"}]})
    assert "name: name must be letters, digits" in _error(spec, "spec.json")

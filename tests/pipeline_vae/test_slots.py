import fastestimator as fe
import pytest
import tensorflow as tf
from fastestimator.op.numpyop.univariate import Minmax
from fastestimator.op.tensorop.model import ModelOp, UpdateOp

from ops import Binarize, CVAELoss
from pipeline_vae import SLOTS, build_graph, build_decoder
from pipeline_vae import slots
from pipeline_vae.slots import build_model


class AnalyticKL(CVAELoss):
    """A user's loss variant: closed-form KL instead of the one-sample estimate."""
    def kl_term(self, mean, logvar, z):
        return -0.5 * tf.reduce_sum(1 + logvar - tf.square(mean) - tf.exp(logvar), axis=-1)


def classes(graph):
    return [(name, type(op).__name__) for name, op in graph.named_ops]


def test_default_graph_is_the_seed_op_list():
    graph = build_graph(latent_dim=2)
    assert classes(graph) == [("rescale", "Rescale"), ("binarize", "Binarize"), ("encode", "ModelOp"),
                              ("split", "SplitOp"), ("reparameterize", "ReparameterizeOp"), ("decode", "ModelOp"),
                              ("loss", "AnalyticKLLoss"), ("update", "UpdateOp"), ("update", "UpdateOp")]
    assert [m.model_name for m in graph.models] == ["encoder", "decoder"]
    assert all(op.gradients is None for op in graph.ops if isinstance(op, UpdateOp))  # FE's own gradients
    joint = build_graph(latent_dim=2, joint_update=True)  # one backward pass, gradients handed to the UpdateOps
    assert classes(joint)[-3:] == [("update", "JointGradientOp"), ("update", "UpdateOp"), ("update", "UpdateOp")]
    updates = [op for op in joint.ops if isinstance(op, UpdateOp)]
    assert [(u.model.model_name, u.gradients) for u in updates] == [("encoder", "gradient_encoder"),
                                                                    ("decoder", "gradient_decoder")]
    assert graph.loss_key == "loss"
    # Every slot in order; the flow and prior slots are empty by default (the seed's Gaussian posterior and N(0, I)).
    assert [name for name in dict.fromkeys(n for n, _ in graph.named_ops) if name != "update"] == [
        name for name in SLOTS if name not in ("flow", "prior")]


def test_replace_and_drop_slots():
    loss = AnalyticKL()
    graph = build_graph(ops={"loss": loss, "binarize": None})
    assert loss in graph.ops
    assert not any(isinstance(op, Binarize) for op in graph.ops)
    assert [n for n, _ in graph.named_ops].count("binarize") == 0


def test_a_slot_can_hold_several_ops():
    extra = Binarize(inputs="x", outputs="x_binary")
    graph = build_graph(ops={"binarize": [Binarize(), extra]})
    assert [op for name, op in graph.named_ops if name == "binarize"][1] is extra


def test_replacing_the_decoder_updates_the_new_model():
    decoder = build_model("decoder", slots.ModelSettings(latent_dim=3))
    decoder.model_name = "my_decoder"
    graph = build_graph(latent_dim=3, ops={"decode": ModelOp(model=decoder, inputs="z", outputs="x_logit")})
    updates = [op for op in graph.ops if isinstance(op, UpdateOp)]
    assert [u.model.model_name for u in updates] == ["encoder", "my_decoder"]


def test_unknown_slot_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown slot name\(s\) 'los' in ops; valid slots are rescale, binarize"):
        build_graph(ops={"los": CVAELoss()})


def test_missing_upstream_key_names_slot_and_key():
    with pytest.raises(ValueError, match=r"slot 'reparameterize' \(ReparameterizeOp\) needs key 'mean', which"
                       r" neither the pipeline nor an earlier slot produces in train mode"):
        build_graph(ops={"split": None})


def test_dropping_the_loss_is_caught_at_the_updates():
    with pytest.raises(ValueError, match=r"slot 'update' \(UpdateOp\) needs key 'loss'"):
        build_graph(ops={"loss": None})


def test_an_eval_only_producer_does_not_satisfy_a_train_consumer():
    with pytest.raises(ValueError, match=r"slot 'binarize' .* needs key 'x_scaled', .* in train mode"):
        build_graph(ops={"rescale": fe.op.tensorop.LambdaOp(fn=lambda x: x, inputs="x", outputs="x_scaled",
                                                             mode="eval"),
                         "binarize": Binarize(inputs="x_scaled", outputs="x")})


def test_numpy_ops_are_refused_with_a_hint():
    with pytest.raises(TypeError, match=r"slot 'binarize': expected a FastEstimator TensorOp.*got Minmax \(NumpyOps"):
        build_graph(ops={"binarize": Minmax(inputs="x", outputs="x")})


def test_models_are_only_built_for_used_slots(monkeypatch):
    mine = ModelOp(model=build_model("decoder", slots.ModelSettings()), inputs="z", outputs="x_logit")
    built = []
    monkeypatch.setattr(slots, "build_model", lambda kind, *args: built.append(kind) or build_model(kind, *args))
    build_graph(ops={"decode": mine})
    assert built == ["encoder"]  # the default decoder is not built when its slot is replaced


def test_bad_learning_rate_is_clear():
    with pytest.raises(ValueError, match="learning_rate must be a positive number, got 0"):
        build_graph(learning_rate=0)


def test_loss_by_name_from_the_registry():
    graph = build_graph(loss="mc_kl")
    assert [type(op) for name, op in graph.named_ops if name == "loss"] == [CVAELoss]
    with pytest.raises(ValueError, match="unknown loss 'beta'; expected one of analytic_kl, mc_kl"):
        build_graph(loss="beta")
    with pytest.raises(ValueError, match=r"give either loss='mc_kl' or ops\['loss'\], not both"):
        build_graph(loss="mc_kl", ops={"loss": CVAELoss()})


def test_the_settings_names_are_the_registries():
    """`pipeline_vae.settings` lists names without importing TensorFlow; they must be the registries' names."""
    from ops.densities import LIKELIHOODS
    from pipeline_vae import settings
    from pipeline_vae.models import MODELS
    assert sorted(settings.LOSS_NAMES) == sorted(slots.LOSSES) and settings.default("loss") == slots.DEFAULT_LOSS
    assert sorted(settings.MODEL_NAMES) == sorted(MODELS) and settings.default("model") == "conv"
    assert sorted(settings.LIKELIHOOD_NAMES) == sorted(LIKELIHOODS)


def test_model_family_and_widths_reach_both_models():
    graph = build_graph(latent_dim=3, model="mlp", widths=(32, 16))
    encoder, decoder = graph.models
    assert [layer.units for layer in encoder.layers if hasattr(layer, "units")] == [32, 16, 6]
    assert [layer.units for layer in decoder.layers if hasattr(layer, "units")] == [16, 32, 784]
    with pytest.raises(ValueError, match="unknown model 'resnet'; expected one of conv, mlp"):
        build_graph(model="resnet")

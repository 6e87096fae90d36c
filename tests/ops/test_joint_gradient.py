import numpy as np
import pytest
import tensorflow as tf

from ops.joint_gradient import JointGradientOp


def test_one_backward_pass_gives_each_models_own_gradients():
    first = tf.keras.Sequential([tf.keras.layers.Dense(3, input_shape=(2, ))])
    second = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(3, ))])
    x = tf.constant([[1.0, 2.0], [0.5, -1.0]])
    with tf.GradientTape(persistent=True) as tape:
        loss = tf.reduce_mean(tf.square(second(first(x))))
        grads_first, grads_second = JointGradientOp(inputs="loss", outputs=("g1", "g2"), models=[first, second]) \
            .forward(loss, state={"tape": tape})
    expected_first = tape.gradient(loss, first.trainable_variables)
    expected_second = tape.gradient(loss, second.trainable_variables)
    assert len(grads_first) == 2 and len(grads_second) == 2  # kernel and bias of each
    for got, want in zip(grads_first + grads_second, expected_first + expected_second):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)


def test_one_output_per_model():
    model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(1, ))])
    with pytest.raises(ValueError, match="needs one output key per model, got 1 outputs for 2 models"):
        JointGradientOp(inputs="loss", outputs="g", models=[model, model])

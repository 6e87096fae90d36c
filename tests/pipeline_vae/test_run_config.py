"""The run's configuration: written once, read back the same, old folders read as MNIST, nonsense refused."""
import json

import pytest

from pipeline_vae.data import DataSource
from pipeline_vae.run_config import CONFIG_FILE, ConfigError, RunConfig


def _config():
    return RunConfig(data=DataSource("pics/", image_size=(32, 24), channels=3, test_fraction=0.2, split_seed=5),
                     data_description="folder pics/", image_shape=(32, 24, 3), labels=False,
                     likelihood="discretized_logistic", binarize_threshold=None, latent_dim=8, model="mlp",
                     widths=(64, 32), learning_rate=3e-4, batch_size=16, epochs=7, seed=2, loss="mc_kl",
                     slots={"rescale": ["Rescale"]})


def test_round_trip_through_the_run_folder(tmp_path):
    config = _config()
    config.write(str(tmp_path))
    again = RunConfig.read(str(tmp_path))
    assert again == config and again.data.image_size == (32, 24)
    assert again.path("/r", "encoder") == "/r/encoder_best_loss.h5"


def test_a_folder_without_a_config_is_an_mnist_run(tmp_path):
    config = RunConfig.read(str(tmp_path))
    assert (config.data.data, config.image_shape, config.likelihood, config.binarize_threshold) == (
        "mnist", (28, 28, 1), "bernoulli", 0.5)
    with pytest.raises(FileNotFoundError, match="save_dir .*nope does not exist"):
        RunConfig.read(str(tmp_path / "nope"))


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(likelihood="poisson"), "likelihood must be one of bernoulli, gaussian, discretized_logistic"),
    (lambda c: c.update(image_shape=[28, 28]), r"image_shape must be \[height, width, 1 or 3\], got \[28, 28\]"),
    (lambda c: c.update(latent_dim=-1), "latent_dim must be a positive integer, got -1"),
    (lambda c: c.update(binarize_threshold=7), "binarize_threshold must be None or a number between 0 and 1"),
    (lambda c: c["files"].update(encoder="/etc/passwd"), "files.encoder must be a file name inside the run folder"),
    (lambda c: c["files"].update(decoder="../x.h5"), "files.decoder must be a file name inside the run folder"),
    (lambda c: c.update(version=3), "version 3 is not one this toolkit reads"),
    (lambda c: c.update(colour="red"), r"unknown field\(s\) colour"),
    (lambda c: c["data"].update(channels=5), r"channels must be None \(follow the data\), 1 \(grey\) or 3 \(RGB\)"),
    (lambda c: c.update(data="pics/"), "data must be a mapping with a 'data' string"),
    (lambda c: c.update(slots=[]), "slots must be a dict"),
])
def test_a_config_edited_into_nonsense_is_one_line_naming_the_file_and_field(tmp_path, edit, message):
    obj = _config().to_json()
    edit(obj)
    (tmp_path / CONFIG_FILE).write_text(json.dumps(obj))
    with pytest.raises(ConfigError, match=message) as err:
        RunConfig.read(str(tmp_path))
    assert str(err.value).startswith(str(tmp_path / CONFIG_FILE)) and "\n" not in str(err.value)


def test_unreadable_json_is_refused(tmp_path):
    (tmp_path / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match="not a readable JSON file"):
        RunConfig.read(str(tmp_path))
    (tmp_path / CONFIG_FILE).write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a JSON object, got list"):
        RunConfig.read(str(tmp_path))

"""pipeline-vae: train, ablate and use convolutional VAEs on FastEstimator.

    est = pipeline_vae.get_estimator(epochs=5, latent_dim=2, save_dir="runs/cvae")
    est.fit()    # -> runs/cvae/encoder_best_loss.h5, decoder_best_loss.h5, cvae_config.json
"""
from pipeline_vae.builders import get_estimator, get_network, get_pipeline, get_traces
from pipeline_vae.data import MNIST, DataError, load_mnist
from pipeline_vae.models import build_decoder, build_encoder
from pipeline_vae.slots import SLOTS, build_graph

__version__ = "0.1.0"
__all__ = ["MNIST", "DataError", "SLOTS", "build_decoder", "build_encoder", "build_graph", "get_estimator",
           "get_network", "get_pipeline", "get_traces", "load_mnist"]

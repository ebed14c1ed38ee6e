"""Evaluation speed: the k = 5000 importance-sampled log-likelihood.

Examples/s of ``vae.evaluate.iwae_log_likelihood`` for the 784-200-200-50
MLP VAE (the first call, on 100 other examples, compiles), with the time
projected to the 10,000-image validation split and the peak RSS that
function reports.
"""

from __future__ import annotations

import jax
import numpy as np

from vae import evaluate as ev
from vae import model as model_lib


def bench_eval(valid_data: np.ndarray, *, examples: int = 200, num_samples: int = 5000) -> dict:
  """k-sample IWAE evaluation rate on ``examples`` validation images."""
  model = model_lib.make_model(architecture="mlp", data_shape=(28, 28, 1), latent_dim=50,
                               encoder_hidden=(200, 200), decoder_hidden=(200, 200))
  params = model_lib.init_params(jax.random.key(0), model)
  ev.iwae_log_likelihood(params, valid_data[:100], jax.random.key(1), model=model,
                         num_samples=num_samples)  # compile
  # The function times itself (and reads the peak RSS) around its own work.
  r = ev.iwae_log_likelihood(params, valid_data[100:100 + examples], jax.random.key(1),
                             model=model, num_samples=num_samples)
  return {"model": "784-200-200-50", "k": num_samples, "examples": examples,
          "seconds": r["seconds"], "examples_per_sec": examples / r["seconds"],
          "projected_seconds_10k": r["seconds"] * 10_000 / examples,
          "peak_rss_mib": r["peak_rss_mib"]}

"""Slow: a real model on the offline binarized MNIST learns, and its bounds
are ordered as theory says (ELBO <= IWAE_k5000 estimate)."""

import os

import jax
import pytest

from experiments.configs import vae_binarized_mnist
from tests.conftest import SHARED_MNIST
from vae import evaluate as ev
from experiments import job as job_lib

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not os.path.isdir(SHARED_MNIST), reason="offline copy not present")
def test_vae_learns_binarized_mnist(tmp_path):
  c = vae_binarized_mnist.get_config()
  c.data_dir = SHARED_MNIST
  c.num_steps = 5000          # 10 epochs
  c.log_every = 500
  c.checkpoint_every = 2500
  c.eval_every = 0
  c.optim.schedule = "constant"
  data = job_lib.load_split(c, "train")
  valid = job_lib.load_split(c, "validation", 500)
  state = job_lib.train(c, str(tmp_path), data, progress=False)
  model = job_lib.build_model(c)
  elbo = ev.dataset_elbo(state.params, valid, jax.random.key(0), model=model)["elbo"]
  iw = ev.iwae_log_likelihood(state.params, valid, jax.random.key(1), model=model,
                              num_samples=5000)["log_likelihood"]
  # After 10 epochs this VAE is around -113 nats (train loss in the full run
  # at that point); an untrained one is about -550.
  assert elbo > -118, elbo
  assert iw > elbo + 1.0, (iw, elbo)   # the k=5000 bound is tighter
  assert iw < -85, iw                  # and not better than the published best

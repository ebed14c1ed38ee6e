"""Procedural gratings: a data set added as one module (vae/data/gratings.py),
found by the registry, trained and scored by the job with nothing else edited."""

import jax.numpy as jnp
import numpy as np
import pytest

from experiments import job as job_lib
from experiments.configs import smoke
from vae import data as data_lib
from vae.data import gratings


@pytest.fixture(scope="module")
def every_grating():
  g = data_lib.load_ground_truth("gratings")
  factors = g.index_to_factors(np.arange(g.num_combinations))
  return factors, np.asarray(g.observations(jnp.asarray(factors)))[..., 0]


def test_the_registry_finds_it_with_its_factors():
  record = data_lib.get("gratings")
  assert record.has_factors and "gratings" in data_lib.GROUND_TRUTH
  assert record.data_shape == (64, 64, 1) and record.splits is None
  g = record.ground_truth()
  assert g.factor_names == ("orientation", "frequency", "phase")
  assert g.factor_sizes == (8, 6, 8) and g.num_combinations == 384


def test_every_combination_is_a_different_binary_image(every_grating):
  _, images = every_grating
  assert set(np.unique(images)) == {0.0, 1.0}
  assert len({im.tobytes() for im in images}) == len(images)


@pytest.mark.slow
def test_the_spectrum_peaks_at_the_factor_frequency_and_orientation(every_grating):
  """The defining property: the 2-D spectrum (zero-padded to 1/4-cycle
  resolution) peaks at ``frequency`` cycles across the image, in the
  direction ``orientation``; adjacent frequencies are 1 cycle apart and
  adjacent orientations pi/8."""
  factors, images = every_grating
  n = 256
  spectrum = np.abs(np.fft.fft2(images - images.mean((1, 2), keepdims=True), s=(n, n)))
  ky, kx = np.unravel_index(spectrum.reshape(len(images), -1).argmax(1), (n, n))
  ky = np.where(ky < n // 2, ky, ky - n) * 64 / n
  kx = np.where(kx < n // 2, kx, kx - n) * 64 / n
  freq_error = np.abs(np.hypot(kx, ky) - gratings.FREQUENCIES[factors[:, 1]])
  angle = np.abs(np.arctan2(ky, kx) % np.pi - gratings.ORIENTATIONS[factors[:, 0]])
  angle = np.minimum(angle, np.pi - angle)
  assert freq_error.max() <= 0.25 and angle.max() < np.pi / 16


def test_half_a_cycle_of_phase_inverts_the_grating(every_grating):
  factors, images = every_grating
  g = data_lib.load_ground_truth("gratings")
  shifted = factors.copy()
  shifted[:, 2] = (shifted[:, 2] + 4) % 8
  inverted = images[g.factors_to_index(shifted)]
  agree = np.mean(inverted == 1 - images, axis=(1, 2))
  assert agree.min() > 0.9        # all but pixels on a stripe's edge


def test_it_cannot_be_streamed():
  with pytest.raises(ValueError, match="procedural gratings is rendered on the device"):
    data_lib.open_dataset(data_lib.DataSettings("gratings", source="stream"))


@pytest.mark.slow   # a whole job on 64x64 images with metrics: ~15 s on 2 cores
def test_the_job_trains_and_scores_it(tmp_path):
  c = smoke.get_config()
  c.dataset, c.model.data_shape = "gratings", (64, 64, 1)
  c.model.encoder_hidden, c.model.decoder_hidden, c.model.latent_dim = (32,), (32,), 3
  c.num_steps, c.log_every, c.checkpoint_every, c.eval_every = 20, 10, 20, 0
  c.batch_size, c.eval.max_examples, c.eval.num_importance_samples = 16, 64, 2
  c.eval.metrics, c.eval.metric_scale, c.tensorboard = ("mig",), 0.01, False
  results = job_lib.train_and_evaluate(c, str(tmp_path), progress=False)
  assert results["num_examples"] == 64 and np.isfinite(results["elbo"]["elbo"])
  mig = results["disentanglement"]["mig"]
  assert 0.0 <= mig["mig"] <= 1.0 and len(mig["mig_per_factor"]) == 3

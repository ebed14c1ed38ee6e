"""Forward KL covers the mass, reverse KL seeks a mode (experiments/kl_asymmetry.py)."""

import math

import numpy as np
import pytest

from experiments import kl_asymmetry as ka


@pytest.fixture(scope="module")
def results():
  return ka.run_demo(seed=0, steps=1500)


def test_forward_fit_is_wider_than_either_mode(results):
  f = results["forward"]
  # Moment matching: mean 0, std sqrt(3^2 + 0.5^2) = 3.04.
  assert abs(f["mu"]) < 0.3
  assert f["sigma"] > 4 * ka.MODE_SIGMA
  assert abs(f["sigma"] - math.sqrt(9.25)) < 0.15


def test_reverse_fit_sits_on_a_mode(results):
  r = results["reverse"]
  assert min(abs(r["mu"] - m) for m in ka.MODES) < 0.15
  assert abs(r["sigma"] - ka.MODE_SIGMA) < 0.1
  # q equal to one well-separated component: KL(q || p) = log 2.
  assert abs(r["kl_q_p"] - math.log(2)) < 0.02


def test_the_two_directions_differ(results):
  for fit in results.values():
    assert abs(fit["kl_p_q"] - fit["kl_q_p"]) > 1.0
  # Each fit is the better one in its own direction.
  assert results["forward"]["kl_p_q"] < results["reverse"]["kl_p_q"]
  assert results["reverse"]["kl_q_p"] < results["forward"]["kl_q_p"]


def test_quadrature_matches_closed_form_kl_between_gaussians():
  from vae import distributions as dist
  import jax.numpy as jnp
  a, b = ka.gaussian_logpdf(0.5, 1.5), ka.gaussian_logpdf(-1.0, 0.7)
  closed = float(dist.kl_diagonal_gaussians(jnp.array([0.5]), jnp.array([2 * np.log(1.5)]),
                                            jnp.array([-1.0]), jnp.array([2 * np.log(0.7)])))
  np.testing.assert_allclose(ka.kl_by_quadrature(a, b), closed, rtol=1e-5)


def test_plot_is_written(results, tmp_path):
  path = ka.plot(results, str(tmp_path / "kl.png"))
  assert open(path, "rb").read(4) == b"\x89PNG"
  with pytest.raises(ValueError, match="direction"):
    ka.fit("sideways", None)

"""Forward vs reverse KL: fit one Gaussian to a bimodal mixture both ways.

Minimising the forward KL(p || q) over q = N(mu, sigma^2) is moment matching:
q covers both modes, wide. Minimising the reverse KL(q || p) is mode seeking:
q sits on one mode, narrow (Bishop 2006, Sec. 10.1.2, Fig. 10.3; Murphy 2012,
Sec. 21.2.2). Both are minimised with optax Adam, the forward KL with samples
of p, the reverse KL with reparameterised samples of q (Kingma & Welling 2014,
Eq. 4), and the resulting KLs are evaluated by quadrature on a fine grid.

  python -m experiments.kl_asymmetry --out kl_asymmetry.png

Expected (modes at -3 and +3, each with sigma 0.5): the forward fit has
mu ~ 0, sigma ~ 3.04 (the mixture's own standard deviation, larger than
either mode's); the reverse fit has mu ~ +3 (the mode nearest its start) and
sigma ~ 0.5; KL(P||Q) != KL(Q||P) for both fits.
"""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

from vae import allocator
from vae import distributions as dist

MODES = (-3.0, 3.0)
MODE_SIGMA = 0.5
GRID = np.linspace(-12.0, 12.0, 8001)


def target_log_prob(x):
  """log p(x) of the equal mixture of N(-3, 0.5^2) and N(3, 0.5^2)."""
  lv = 2.0 * math.log(MODE_SIGMA)
  comps = jnp.stack([dist.gaussian_log_prob_per_dim(x, m, lv) for m in MODES])
  return jax.nn.logsumexp(comps, axis=0) - math.log(len(MODES))


def sample_target(key, n):
  k1, k2 = jax.random.split(key)
  which = jax.random.randint(k1, (n,), 0, len(MODES))
  return jnp.asarray(MODES)[which] + MODE_SIGMA * jax.random.normal(k2, (n,))


def q_log_prob(theta, x):
  mu, log_sigma = theta
  return dist.gaussian_log_prob_per_dim(x, mu, 2.0 * log_sigma)


def forward_kl_loss(theta, key, n=512):
  """Monte Carlo KL(p || q) up to the constant E_p log p: -E_p log q(x)."""
  return -jnp.mean(q_log_prob(theta, sample_target(key, n)))


def reverse_kl_loss(theta, key, n=512):
  """Monte Carlo KL(q || p) with reparameterised x = mu + sigma eps."""
  mu, log_sigma = theta
  x = mu + jnp.exp(log_sigma) * jax.random.normal(key, (n,))
  return jnp.mean(q_log_prob(theta, x) - target_log_prob(x))


def fit(direction: str, key, *, steps: int = 2000, learning_rate: float = 0.05,
        init=(1.0, 0.0)):
  """(mu, sigma) of the Gaussian that minimises KL in ``direction``
  ("forward": KL(p||q); "reverse": KL(q||p)), from ``init`` = (mu, log sigma)."""
  if direction not in ("forward", "reverse"):
    raise ValueError(f"direction must be 'forward' or 'reverse', got {direction!r}")
  loss = forward_kl_loss if direction == "forward" else reverse_kl_loss
  opt = optax.adam(learning_rate)
  theta = jnp.asarray(init, jnp.float32)

  @jax.jit
  def run(theta, key):
    def step(carry, k):
      th, st = carry
      g = jax.grad(loss)(th, k)
      upd, st = opt.update(g, st)
      return (optax.apply_updates(th, upd), st), None
    (theta, _), _ = jax.lax.scan(step, (theta, opt.init(theta)), jax.random.split(key, steps))
    return theta

  mu, log_sigma = run(theta, key)
  return float(mu), float(jnp.exp(log_sigma))


def kl_by_quadrature(log_a, log_b) -> float:
  """KL(a || b) = integral of a (log a - log b) on GRID."""
  la, lb = np.asarray(log_a(GRID), np.float64), np.asarray(log_b(GRID), np.float64)
  a = np.exp(la)
  trapezoid = getattr(np, "trapezoid", None) or np.trapz   # numpy < 2 has only trapz
  return float(trapezoid(a * (la - lb), GRID))


def gaussian_logpdf(mu, sigma):
  return lambda x: -0.5 * (np.log(2 * np.pi) + 2 * np.log(sigma) + ((x - mu) / sigma) ** 2)


def run_demo(seed: int = 0, steps: int = 2000) -> dict:
  """Both fits and the four KLs, as a dict."""
  key = jax.random.key(seed)
  out = {}
  logp = lambda x: np.asarray(target_log_prob(jnp.asarray(x, jnp.float32)), np.float64)
  for i, direction in enumerate(("forward", "reverse")):
    mu, sigma = fit(direction, jax.random.fold_in(key, i), steps=steps)
    logq = gaussian_logpdf(mu, sigma)
    out[direction] = {"mu": mu, "sigma": sigma, "kl_p_q": kl_by_quadrature(logp, logq),
                      "kl_q_p": kl_by_quadrature(logq, logp)}
  return out


def plot(results: dict, path: str) -> str:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  x = GRID[(GRID > -8) & (GRID < 8)]
  fig, ax = plt.subplots(figsize=(7, 3.5))
  ax.plot(x, np.exp(np.asarray(target_log_prob(jnp.asarray(x, jnp.float32)))), "k",
          lw=2, label="target p (two modes)")
  for name, style in (("forward", "C0--"), ("reverse", "C3-")):
    r = results[name]
    ax.plot(x, np.exp(gaussian_logpdf(r["mu"], r["sigma"])(x)), style,
            label=f"{name} KL fit: mu={r['mu']:.2f}, sigma={r['sigma']:.2f}")
  ax.set_xlabel("x")
  ax.legend(fontsize=8)
  ax.set_title("argmin KL(p||q) covers the mass; argmin KL(q||p) seeks a mode", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


_OUT = flags.DEFINE_string("out", "kl_asymmetry.png", "Figure path.")
_STEPS = flags.DEFINE_integer("steps", 2000, "Adam steps per fit.")


def main(argv):
  allocator.tune()   # the malloc settings XLA:CPU needs (vae/allocator.py)
  del argv
  results = run_demo(steps=_STEPS.value)
  print(json.dumps(results, indent=2))
  print(f"wrote {plot(results, _OUT.value)}")


if __name__ == "__main__":
  app.run(main)

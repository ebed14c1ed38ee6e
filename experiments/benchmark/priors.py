"""The learned priors' training steps: the VampPrior's step with its log p(z)
as ``vae.distributions.gaussian_mixture_log_prob`` (the gradient written by
hand) against the same step with autodiff's gradient of the definition
(log-mean-exp over components of ``gaussian_log_prob``, per point and
component), beside the plain VAE's step: the 784-200-200-50 tanh MLP of
``vampprior_binarized_mnist``, batch 100, Adam, one process, the three
alternated (``--repeats`` rounds), as steps/s and ratios to the VAE's.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vae import distributions as dist
from vae import model as model_lib
from vae import objectives
from vae import train as train_lib
from vae.priors import vampprior

from .timing import Carried, alternate, time_it


@dataclasses.dataclass(frozen=True)
class AutodiffVampPrior(vampprior.VampPrior):
  """The VampPrior with its density as defined, differentiated by autodiff
  (the library's form before ``gaussian_mixture_log_prob``): the baseline."""

  def log_prob_batch_fn(self, params, encode_batch):
    means, logvars = self.components(params, encode_batch)
    log_k = math.log(self.num_components)

    def one(z):
      per = jax.vmap(lambda m, lv: dist.gaussian_log_prob(z, m, lv))(means, logvars)
      return jax.nn.logsumexp(per) - log_k
    return lambda z, keys=None: jax.vmap(one)(z)


def _models(num_components: int) -> dict[str, model_lib.Model]:
  common = dict(architecture="mlp", data_shape=(28, 28, 1), latent_dim=50,
                encoder_hidden=(200, 200), decoder_hidden=(200, 200), activation="tanh",
                likelihood="bernoulli")
  vamp = model_lib.make_model(**common, prior="vampprior",
                              prior_hparams={"num_components": num_components})
  return {"vae": model_lib.make_model(**common),
          "vampprior": vamp,
          "vampprior, autodiff gradient": dataclasses.replace(
              vamp, prior=AutodiffVampPrior(num_components=num_components))}


def bench_priors(batch: np.ndarray, *, num_components: int = 500, steps: int = 60,
                 repeats: int = 3) -> list[dict]:
  """One row per step: its steps/s in each round, their range, and its
  ratio to the VAE's step of the same round; also the first step's loss
  (the two VampPrior forms give the same value)."""
  x = jnp.asarray(batch, jnp.float32)
  opt = optax.adam(1e-3)
  loops, first_loss = {}, {}
  for name, model in _models(num_components).items():
    step = jax.jit(train_lib.make_train_step(objectives.get_objective("vae"), model, opt))
    state = train_lib.init_state(jax.random.key(0), model, opt)
    first_loss[name] = float(step(state, x, jax.random.key(1))[1]["loss"])
    loops[name] = Carried(lambda s, i, step=step: step(s, x, jax.random.fold_in(
        jax.random.key(2), i)), state)
  rounds = alternate({name: (lambda loop=loop: steps / time_it(loop.run(steps)).best)
                      for name, loop in loops.items()}, repeats)
  return [{"step": name, "batch": int(x.shape[0]), "num_components": num_components,
           "steps_per_sec": rates, "vs_vae": [r / v for r, v in zip(rates, rounds["vae"])],
           "first_loss": first_loss[name]} for name, rates in rounds.items()]

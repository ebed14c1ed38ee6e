"""vae: variational autoencoders and disentangled representation learning in JAX.

The pure functions (one example each; vmap for batches):
  encode, reparameterize, decode, elbo  (vae.model)
Objectives ``loss(params, batch, key, *, model, **hparams)``: vae.objectives.
Training: vae.train. Evaluation: vae.evaluate.

``import vae`` changes nothing process-wide. On a CPU, call
``vae.allocator.tune()`` first thing (the console scripts do) to keep
XLA:CPU's large temporaries out of mmap/munmap, which otherwise cost the
conv networks' training step more time in page faults than in arithmetic
(vae/allocator.py).
"""

from vae import distributions
from vae.model import Model, decode, elbo, elbo_terms, encode, init_params, make_model, reparameterize
from vae.objectives import get_objective, iwae_bound

__version__ = "0.1.0"

__all__ = ["Model", "make_model", "init_params", "encode", "reparameterize",
           "decode", "elbo", "elbo_terms", "get_objective", "iwae_bound",
           "distributions"]

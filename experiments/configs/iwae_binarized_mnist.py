"""IWAE (k = 5 or k = 50), same network as vae_binarized_mnist.

Burda, Grosse & Salakhutdinov (2016), Eq. 8 and Appendix D, Table 3: with one
stochastic layer on the static binarization they report test NLL 88.71 (VAE),
and lower for IWAE (k = 5, k = 50). Training costs about k decoder passes per
example, so on a CPU compare at equal epochs (see README):

Command (k selects the variant; default k5):
  python -m experiments.train --config experiments/configs/iwae_binarized_mnist.py:k50 \
      --workdir /tmp/iwae50 --config.data_dir=../shared/data/binarized_mnist
Expected: at the same number of epochs, a higher k = 5000 log-likelihood
estimate than the VAE (README.md has the measured pair).
"""

from vae_experiments.configs import vae_binarized_mnist


def get_config(variant: str = "k5"):
  if variant not in ("k5", "k50"):
    raise ValueError(f"variant must be 'k5' or 'k50', got {variant!r}")
  c = vae_binarized_mnist.get_config()
  c.objective = "iwae"
  c.hparams.iwae.num_samples = int(variant[1:])
  return c

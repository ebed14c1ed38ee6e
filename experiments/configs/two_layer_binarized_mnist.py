"""A VAE with two stochastic layers (Burda, Grosse & Salakhutdinov 2016) on
static binarized MNIST, with the schedule of vae_binarized_mnist.

Their architecture (Sec. 5): x -> 100-100 tanh -> z1 (100) -> 50-50 tanh ->
z2 (50), the generative side mirrored. The second layer is the prior of the
first (vae/priors/two_layer.py); the ELBO and the IWAE weights are theirs
(Eq. 8).

Burda et al. (2016), Table 1: two stochastic layers reach a test NLL of
85.33 nats trained as a VAE and 82.90 as an IWAE with k = 50, against 86.76
and 84.78 with one layer (their binarization of MNIST; the one-layer VAE on
the static binarization is 88.71, App. D).

Command (the variant selects the objective; default vae):
  python -m experiments.train --config experiments/configs/two_layer_binarized_mnist.py \
      --workdir /tmp/two_layer --config.data_dir=../shared/data/binarized_mnist
  (two_layer_binarized_mnist.py:iwae50 trains the IWAE with k = 50)
Expected: a higher IWAE log-likelihood than vae_binarized_mnist at the same
number of epochs (README.md, "Models", has the measured pair).
"""

from vae_experiments.configs import vae_binarized_mnist


def get_config(variant: str = "vae"):
  if variant not in ("vae", "iwae50"):
    raise ValueError(f"variant must be 'vae' or 'iwae50', got {variant!r}")
  c = vae_binarized_mnist.get_config()
  c.model.latent_dim = 100
  c.model.encoder_hidden = (100, 100)
  c.model.decoder_hidden = (100, 100)
  c.model.prior = "two_layer"
  c.model.prior_hparams.two_layer.latent_dim = 50
  c.model.prior_hparams.two_layer.hidden = 50
  if variant == "iwae50":
    c.objective = "iwae"
    c.hparams.iwae.num_samples = 50
  return c

"""VAE with a planar-flow posterior (K flows on the encoder's Gaussian),
same network and schedule as vae_binarized_mnist.

Rezende & Mohamed (2015), Eq. 10-13 and Fig. 4: on binarized MNIST the bound
improves with the flow's length K (their deep latent Gaussian model; K = 10
improves the variational bound by several nats over K = 0). Here the flow is
amortised from the encoder's Gaussian (vae/posteriors/planar.py) and the KL
is the one-sample estimate log q_K(z_K|x) - log p(z_K).

Command (K selects the variant; default k10):
  python -m experiments.train --config experiments/configs/planar_binarized_mnist.py:k10 \
      --workdir /tmp/planar --config.data_dir=../shared/data/binarized_mnist
Expected: a higher ELBO and IWAE log-likelihood than vae_binarized_mnist at
the same number of epochs (README.md, "Models", has the measured pair).
"""

from vae_experiments.configs import vae_binarized_mnist


def get_config(variant: str = "k10"):
  if not (variant.startswith("k") and variant[1:].isdigit() and int(variant[1:]) >= 1):
    raise ValueError(f"variant must be k<number of flows>, e.g. 'k10', got {variant!r}")
  c = vae_binarized_mnist.get_config()
  c.model.posterior_family = "planar"
  c.model.posterior_hparams.planar.num_flows = int(variant[1:])
  return c

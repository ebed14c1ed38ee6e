"""VAE with an inverse-autoregressive-flow posterior (2 MADE steps of 320
units on the encoder's Gaussian), same network and schedule as
vae_binarized_mnist.

Kingma et al. (2016), Eq. 10-14 and Table 2: IAF tightens the bound and
raises the log-likelihood over the diagonal Gaussian posterior. Their MNIST
figures (Table 2) come from a convolutional ResNet VAE on dynamically
binarized MNIST, a setting this CPU does not train; compare with the plain
VAE of vae_binarized_mnist trained alike.

Command:
  python -m experiments.train --config experiments/configs/iaf_binarized_mnist.py \
      --workdir /tmp/iaf --config.data_dir=../shared/data/binarized_mnist
Expected: a higher ELBO and IWAE log-likelihood than vae_binarized_mnist at
the same number of epochs (README.md, "Models", has the measured pair).
"""

from vae_experiments.configs import vae_binarized_mnist


def get_config():
  c = vae_binarized_mnist.get_config()
  c.model.posterior_family = "iaf"
  return c

"""VQ-VAE: 8 code vectors of 8 dimensions, each one of 128 codebook entries
(EMA codebook, decay 0.99; commitment 0.25), same MLP network and schedule as
vae_binarized_mnist.

van den Oord et al. (2017), Eq. 3 and App. A.1. The paper reports CIFAR-10
bits/dim and ImageNet samples from conv networks and a PixelCNN prior, no
setting this CPU trains; here the figures are the reconstruction, the
bound log p(x|z_q) - 8 log 128 with the uniform prior over codes, and the
codebook usage (perplexity, out of 128).

Command:
  python -m experiments.train --config experiments/configs/vq_vae_binarized_mnist.py \
      --workdir /tmp/vqvae --config.data_dir=../shared/data/binarized_mnist
Expected: reconstructions close to the data (a reconstruction term well
above the VAE's), a perplexity well above 1 (most codes in use; dead codes
are restarted below an EMA count of 0.01); samples from the uniform prior
over codes are not digits (the paper fits an autoregressive prior for that).
README.md, "Models", has the measured figures.
"""

from vae_experiments.configs import vae_binarized_mnist


def get_config():
  c = vae_binarized_mnist.get_config()
  c.objective = "vq_vae"
  c.model.latent_dim = 64
  c.model.posterior_family = "vq"
  c.model.posterior_hparams.vq.num_codes = 128
  c.model.posterior_hparams.vq.code_dim = 8
  c.model.posterior_hparams.vq.ema_decay = 0.99
  c.hparams.vq_vae.dead_code_threshold = 0.01
  return c

"""Denoising autoencoder (Vincent et al. 2008) on binarized MNIST.

Masking noise: each input pixel is zeroed with probability 0.25 and the clean
image is reconstructed (Vincent et al. 2008, Sec. 2.3). Pass
--config.hparams.dae.corruption=gaussian --config.hparams.dae.noise_level=0.5 for
additive Gaussian noise (Vincent et al. 2010, Sec. 4.2).

Command:
  python -m experiments.train --config experiments/configs/dae_binarized_mnist.py \
      --workdir /tmp/dae_bmnist --config.data_dir=../shared/data/binarized_mnist
Expected: reconstruction log-likelihood of clean inputs a little below the
plain AE's (the DAE is trained on corrupted inputs).
"""

from vae_experiments.configs import ae_binarized_mnist


def get_config():
  c = ae_binarized_mnist.get_config()
  c.objective = "dae"
  c.hparams.dae.corruption = "masking"
  c.hparams.dae.noise_level = 0.25
  return c

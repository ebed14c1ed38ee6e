"""InfoVAE in its MMD-VAE form (alpha = 0, lambda = 1000, Gaussian kernel),
same network and schedule as vae_binarized_mnist.

Zhao, Song & Ermon (2019), Eq. 6 and Sec. 5: the ELBO plus lambda - 1 times
the MMD between the aggregate posterior and the prior; it keeps more
information in the code than the ELBO alone.

Command:
  python -m experiments.train --config experiments/configs/info_vae_binarized_mnist.py \
      --workdir /tmp/infovae --config.data_dir=../shared/data/binarized_mnist
Expected: an ELBO close to vae_binarized_mnist's at the same number of epochs
and a smaller MMD between q(z) and p(z) (README.md, "Models").
"""

from vae_experiments.configs import vae_binarized_mnist


def get_config():
  c = vae_binarized_mnist.get_config()
  c.objective = "info_vae"
  return c

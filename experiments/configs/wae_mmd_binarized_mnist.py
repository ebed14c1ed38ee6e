"""WAE-MMD (lambda = 10, inverse multiquadratics kernel over seven scales),
same network and schedule as vae_binarized_mnist.

Tolstikhin et al. (2018), Algorithm 2 and Sec. 4: the aggregate posterior is
matched to the prior by the MMD instead of a per-example KL, so codes are not
pushed towards the prior one by one and reconstructions are sharper, while
samples from the prior stay good. The paper reports sample quality (FID) on
CelebA, no MNIST likelihood; we report reconstruction and the MMD.

Command:
  python -m experiments.train --config experiments/configs/wae_mmd_binarized_mnist.py \
      --workdir /tmp/wae --config.data_dir=../shared/data/binarized_mnist
Expected: a better reconstruction term than vae_binarized_mnist at the same
number of epochs, with a larger KL (it is measured, not trained), and prior
samples that look like digits (prior_samples.png).
"""

from vae_experiments.configs import vae_binarized_mnist


def get_config():
  c = vae_binarized_mnist.get_config()
  c.objective = "wae_mmd"
  return c

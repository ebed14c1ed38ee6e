"""A VAE on your own images: a folder of PNG/JPEG files, or an .npz.

The disentanglement_lib conv encoder/decoder on 64x64 RGB (every image is
converted and resized to ``model.data_shape``: set ``(64, 64, 1)`` for
grayscale), 10 latents, the cross-entropy likelihood that disentanglement_lib
uses for every image set (``model.likelihood="cross_entropy"``: pixels in
[0, 1]; not a normalised likelihood, so the ELBO is a training objective,
not a log-likelihood bound; ``gaussian`` with ``model.obs_variance=shared``
learns a noise level instead), Adam at 1e-4, batch 64. 10% of the images
(chosen by a hash of each file's path) are the validation split. Folders
larger than a quarter of the device's memory are streamed from disk
(``data_source="auto"``; ``stream`` forces it).

Command:
  python -m experiments.train --config vae_images --workdir workdirs/my_images \
      --config.data_dir=/path/to/images
Expected: reconstructions, traversals and prior samples in the workdir; the
validation ELBO in eval_validation.json. How good they get depends on the
images and the steps: 10,000 steps take about 8 min on a 2-core CPU (20.7-20.9
steps/s in memory, 17.5-19.0 streamed from PNG files: `python -m
experiments.benchmark --notraining --eval_examples 0 --nogeneration
--streaming`), plus the final evaluation.
"""

from vae_experiments.configs import default


def get_config():
  c = default.get_config()
  c.dataset = "images"
  c.data_dir = ""                  # required: the folder or .npz
  c.validation_fraction = 0.1
  c.data_source = "auto"
  c.model.architecture = "conv"
  c.model.data_shape = (64, 64, 3)
  c.model.latent_dim = 10
  c.model.likelihood = "cross_entropy"
  c.objective = "vae"
  c.batch_size = 64
  c.num_steps = 10_000
  c.log_every = 100
  c.checkpoint_every = 1_000
  c.eval_every = 1_000
  c.optim.learning_rate = 1e-4
  c.eval.split = "validation"
  c.eval.max_examples = 1_000
  c.eval.metrics = ()
  return c

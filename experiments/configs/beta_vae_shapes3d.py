"""beta-VAE on Shapes3D streamed from disk, as disentanglement_lib trains it
(Locatello et al. 2019): 64x64x3 images, the cross-entropy ("Bernoulli")
likelihood on [0, 1] pixels, the conv networks of Table 1, 10 latents,
Adam 1e-4, batch 64, 300,000 steps, beta = 4 (from the study's sweep
{1, 2, 4, 6, 8, 16}).

Data: tensorflow-datasets ``shapes3d`` (Burgess & Kim 2018; 480,000 images,
5.9 GB as uint8) read by random access (``data_source="stream"``): only the
factor labels are held in memory, the training batches are read ahead by a
background thread, and the metrics read the images they need. The set must
be prepared in the array_record format once:
  tfds build shapes3d --file_format=array_record [--data_dir DIR]
Each batch is drawn uniformly with replacement, as disentanglement_lib draws
it (and as ``data_source="memory"`` does on the device, holding the whole
set there).

Command:
  python -m experiments.train --config beta_vae_shapes3d \
      --workdir workdirs/beta_vae_shapes3d [--config.tfds_data_dir=DIR]
Expected: the study's scores for beta-VAE on Shapes3D are in Locatello et
al. (2019), Fig. 13; 300k steps take hours on a GPU.
"""

from vae_experiments.configs import dsprites_study


def get_config():
  c = dsprites_study.get_config()
  c.dataset = "tfds:shapes3d"
  c.data_source = "stream"
  c.model.data_shape = (64, 64, 3)
  c.model.likelihood = "cross_entropy"
  c.objective = "beta_vae"
  c.hparams.beta_vae.beta = 4.0
  return c


def get_sweep():
  return [{"hparams.beta_vae.beta": b} for b in (1.0, 2.0, 4.0, 6.0, 8.0, 16.0)]

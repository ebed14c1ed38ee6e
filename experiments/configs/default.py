"""Every config field, with its default: beta-VAE on procedural dSprites.

Every published config starts from this file and names what it changes. The
job `vae-train` runs without --config is quickstart.py (beta-TCVAE, scored
by MIG); this file by itself is the short beta-VAE run below.

It needs no download: dSprites is rendered on the device from sampled
factors each step (vae/data/dsprites.py). Conv encoder/decoder of
disentanglement_lib, 10 latents, Bernoulli decoder, beta = 4 (Higgins et al.
2017), on a schedule that finishes in about two minutes on a 2-core CPU;
it writes reconstructions, latent traversals, prior samples and the
evaluation JSON.

Command:
  python -m experiments.train --config default --workdir workdirs/beta_vae_quick
Expected: the ELBO on 1,000 held-out renders improves from about -2800 nats
(untrained) to about -130 after 700 steps (measured: 53 s of training on 2 CPU
cores, 10 active units; before the conv speed work and the fitted renderer it
was -129 in 5.5 min); longer schedules sharpen the traversals.
"""

import ml_collections

from vae import model as model_lib
from vae import objectives
from vae import posteriors
from vae import priors


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0

  # Data: `dataset` names a loader in vae/data: "dsprites" (procedural, on the
  # device), "binarized_mnist" (`data_dir`: a local .npz folder such as
  # ../shared/data/binarized_mnist; empty: tensorflow-datasets),
  # "tfds:dsprites" | "tfds:shapes3d" | "tfds:smallnorb", or "images".
  c.dataset = "dsprites"
  c.data_dir = ""
  c.tfds_data_dir = ""
  c.max_train_examples = 0  # 0: all
  # dataset="images": your own images, data_dir a folder of image files
  # (searched recursively) or an .npz holding "images"; each image is made
  # model.data_shape (grayscale for C=1, RGB for C=3; Lanczos resize). This
  # share of them (chosen by a hash of each path, stable as files come and
  # go) is the "validation" split.
  c.validation_fraction = 0.1
  # Where training batches come from: "memory" (the data on the device, the
  # fast path), "stream" (read on the host by a background thread,
  # prefetch_batches ahead; data larger than memory; tfds sets must be
  # prepared as array_record), or "auto": stream data bigger than a quarter
  # of the device's memory. Procedural dsprites is always rendered on the
  # device.
  c.data_source = "auto"
  c.prefetch_batches = 8
  # The label a conditional VAE reads (Sohn et al. 2015), with
  # model.num_classes: "class" (dataset="images": the class subfolder names)
  # or a factor of a ground-truth set ("shape" for dsprites); "" none.
  c.label = ""

  c.model = ml_collections.ConfigDict()
  c.model.architecture = "conv"       # "mlp" | "conv" (64x64xC)
  c.model.data_shape = (64, 64, 1)
  c.model.latent_dim = 10
  # "bernoulli": binary data (0/1); "cross_entropy": [0, 1] data, as
  # disentanglement_lib trains every data set (not a normalised likelihood);
  # "gaussian": any real values (obs_variance: "fixed" at obs_logvar, or
  # learned, "shared" or "per_pixel", starting at obs_logvar, floored at
  # min_obs_logvar: one grey level of 8-bit images).
  c.model.likelihood = "bernoulli"
  c.model.obs_logvar = 0.0
  c.model.obs_variance = "fixed"      # "fixed" | "shared" | "per_pixel"
  c.model.min_obs_logvar = model_lib.MIN_OBS_LOGVAR   # 2 log(1/255)
  c.model.posterior = "diagonal"      # "diagonal" | "isotropic"
  c.model.encoder_hidden = (200, 200)
  c.model.decoder_hidden = (200, 200)
  c.model.activation = "tanh"
  c.model.compute_dtype = "float32"   # "bfloat16": mixed precision (params stay f32)
  # The conv networks' convolutions: "gemm" (vae/conv.py, fast on XLA:CPU),
  # "xla" (XLA's own: cuDNN on GPU, TPU) or "auto" (GEMM on a CPU only). Same
  # parameters, so a rerun may change it.
  c.model.conv_impl = "auto"
  # The posterior family on the encoder's Gaussian (vae/posteriors: "gaussian",
  # "planar" flows) and the prior (vae/priors: "standard_normal", "vampprior"),
  # each with a section of hyperparameters per name (the paper's defaults):
  # --config.model.posterior_hparams.planar.num_flows=20. Only the chosen
  # family's and prior's sections are used.
  c.model.posterior_family = "gaussian"
  c.model.posterior_hparams = ml_collections.ConfigDict(posteriors.default_hparams())
  c.model.prior = "standard_normal"
  c.model.prior_hparams = ml_collections.ConfigDict(priors.default_hparams())
  # > 0: a conditional VAE on `label`'s num_classes classes (vae/conditioning.py).
  c.model.num_classes = 0

  # Objective name (vae/objectives registry) and its hyperparameters, one
  # section per objective with the paper's defaults (from each objective's
  # record): --config.hparams.factor_vae.gamma=10. Only the chosen objective's
  # section is used; an unknown field is an error.
  c.objective = "beta_vae"
  c.hparams = ml_collections.ConfigDict(objectives.default_hparams())

  # "scan": many steps in one lax.scan (data on device); "per_step": one jitted
  # call per step; "auto": scan.
  c.train_loop = "auto"
  c.batch_size = 64
  c.num_steps = 700
  c.log_every = 50           # steps fused into one lax.scan between logs
  c.checkpoint_every = 350   # a multiple of log_every
  c.eval_every = 350         # held-out ELBO into metrics.jsonl; 0: off
  c.tensorboard = True       # also TensorBoard event files in <workdir>/tensorboard

  c.optim = ml_collections.ConfigDict()
  c.optim.optimizer = "adam"
  c.optim.learning_rate = 5e-4
  c.optim.b1 = 0.9
  c.optim.b2 = 0.999
  c.optim.eps = 1e-8
  c.optim.weight_decay = 0.0
  c.optim.momentum = 0.0
  c.optim.schedule = "constant"       # "constant" | "cosine" | "exponential"
  c.optim.warmup_steps = 0
  c.optim.decay_steps = 100_000
  c.optim.decay_rate = 0.1
  c.optim.end_lr_factor = 0.0
  c.optim.grad_clip_norm = 0.0        # 0: no clipping

  # FactorVAE's discriminator (Kim & Mnih 2018: Adam 1e-4, b1 0.5, b2 0.9).
  c.discriminator_optim = ml_collections.ConfigDict()
  c.discriminator_optim.optimizer = "adam"
  c.discriminator_optim.learning_rate = 1e-4
  c.discriminator_optim.b1 = 0.5
  c.discriminator_optim.b2 = 0.9
  c.discriminator_optim.eps = 1e-8
  c.discriminator_optim.schedule = "constant"

  # Multi-host: jax.distributed.initialize() before anything else. Empty
  # address / -1 read the cluster environment (SLURM, TPU pods).
  c.distributed = ml_collections.ConfigDict()
  c.distributed.enabled = False
  c.distributed.coordinator_address = ""
  c.distributed.num_processes = -1
  c.distributed.process_id = -1

  c.eval = ml_collections.ConfigDict()
  c.eval.split = "validation"     # array data sets; ground-truth sets use a held-out sample
  c.eval.max_examples = 1000      # 0: the whole split (array data) or 10,000 renders
  c.eval.num_importance_samples = 10   # a cheap check here; 5000 for likelihood figures
  c.eval.iwae_batch_size = 25
  c.eval.chunk_size = 10               # memory ~ iwae_batch_size * chunk_size decodes
  c.eval.elbo_batch_size = 250
  # Diagnostics logged with each periodic evaluation of a probabilistic model:
  # KL per dimension, active units and the beta-TCVAE decomposition (MI, TC,
  # dim-KL) with both estimators, on batches of this size.
  c.eval.diagnostics_batch_size = 256
  # Disentanglement metrics (vae/metrics) scored at the end on ground-truth
  # data sets: any of beta_vae, factor_vae, mig, dci, sap, modularity. Sample
  # sizes are the published protocols times metric_scale.
  c.eval.metrics = ()
  c.eval.metric_scale = 1.0
  c.eval.dci_importance = "gbt"       # "gbt" (reference protocol) | "gbt_jax" | "hist_gbt" | "linear"
  # Learning curves of disentanglement: every score_every steps (a multiple
  # of eval_every; 0: off) the periodic evaluation also scores these metrics
  # (same sample sizes and key as the final scores) into metrics.jsonl and
  # TensorBoard, under eval/disentanglement/<metric>/...
  c.eval.score_every = 0
  c.eval.score_metrics = ("mig",)
  return c

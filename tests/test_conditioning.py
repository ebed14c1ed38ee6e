"""The conditional VAE (Sohn et al. 2015; vae/conditioning.py): the label
reaches both networks, a model whose label weights are zero is exactly the
unconditional one, a trained model uses the label, labels travel with their
images through every source and the evaluation path, and what cannot take
labels says so."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from vae import conditioning as cond_lib
from vae import data as data_lib
from vae import evaluate as ev
from vae import model as model_lib
from vae import objectives
from vae.data import sources

K = 3


def _model(num_classes=K, **kw):
  return model_lib.make_model(architecture="mlp", data_shape=(6, 6, 1), latent_dim=2,
                              encoder_hidden=(16,), decoder_hidden=(16,),
                              num_classes=num_classes, **kw)


def _batch(n=12, seed=1):
  x = (jax.random.uniform(jax.random.key(seed), (n, 6, 6, 1)) > 0.5).astype(jnp.float32)
  return cond_lib.Labeled(x, jnp.arange(n) % K)


def test_the_label_reaches_the_encoder_and_the_decoder():
  m = _model()
  p = model_lib.init_params(jax.random.key(0), m)
  # One-hot rows appended to the first layer of each network.
  assert p["encoder"]["dense_0"]["kernel"].shape == (36 + K, 16)
  assert p["decoder"]["dense_0"]["kernel"].shape == (2 + K, 16)
  x, z = _batch().x[0], jnp.ones(2)
  means = [model_lib.encode(p, x, model=m, y=c)[0] for c in range(K)]
  outs = [model_lib.decode(p, z, model=m, y=c) for c in range(K)]
  for c in range(1, K):
    assert not np.allclose(means[0], means[c]) and not np.allclose(outs[0], outs[c])


def test_zero_label_weights_give_the_unconditional_model_exactly():
  m, m0 = _model(), _model(num_classes=0)
  p = model_lib.init_params(jax.random.key(0), m)
  for net in ("encoder", "decoder"):
    k = p[net]["dense_0"]["kernel"]
    p[net]["dense_0"]["kernel"] = k.at[-K:].set(0.0)
  p0 = jax.tree.map(lambda a: a, p)
  for net in ("encoder", "decoder"):
    p0[net]["dense_0"]["kernel"] = p[net]["dense_0"]["kernel"][:-K]
  b, key = _batch(), jax.random.key(3)
  t = model_lib.batch_elbo_terms(p, b, key, model=m)
  t0 = model_lib.batch_elbo_terms(p0, b.x, key, model=m0)
  np.testing.assert_allclose(t["elbo"], t0["elbo"], rtol=1e-5, atol=1e-4)
  lw = model_lib.log_importance_weights(p, b.x[0], key, 5, model=m, y=b.y[0])[0]
  lw0 = model_lib.log_importance_weights(p0, b.x[0], key, 5, model=m0)[0]
  np.testing.assert_allclose(lw, lw0, rtol=1e-5, atol=1e-4)


def test_the_batch_path_equals_the_one_example_functions():
  m = _model()
  p = model_lib.init_params(jax.random.key(0), m)
  b, key = _batch(), jax.random.key(4)
  t = model_lib.batch_elbo_terms(p, b, key, model=m)
  keys = jax.random.split(key, len(b.y))
  one = jax.vmap(lambda x, y, k: model_lib.elbo_terms(p, x, k, model=m, y=y)["elbo"])(
      b.x, b.y, keys)
  np.testing.assert_allclose(t["elbo"], one, rtol=1e-6, atol=1e-5)


def _templates():
  """Three classes, each a fixed binary 6x6 pattern: given the label, the
  image is known (up to 5% flipped pixels)."""
  rng = np.random.default_rng(0)
  return (rng.random((K, 6, 6, 1)) > 0.5).astype(np.float32)


def _class_data(n, seed):
  rng = np.random.default_rng(seed)
  y = rng.integers(0, K, n)
  flip = rng.random((n, 6, 6, 1)) < 0.05
  return np.abs(_templates()[y] - flip).astype(np.float32), y.astype(np.int32)


def test_a_trained_conditional_vae_uses_its_label():
  """Trained on images that their class determines, the bound with the true
  labels is far above the bound with the labels shifted by one class."""
  m = _model()
  loss = objectives.get_objective("vae")
  x, y = _class_data(600, 0)
  opt = optax.adam(1e-2)
  p = model_lib.init_params(jax.random.key(0), m)
  state = opt.init(p)

  @jax.jit
  def step(p, state, i):
    idx = jax.random.choice(jax.random.fold_in(jax.random.key(1), i), 600, (64,))
    b = cond_lib.Labeled(jnp.asarray(x)[idx], jnp.asarray(y)[idx])
    g = jax.grad(lambda q: loss(q, b, jax.random.fold_in(jax.random.key(2), i), model=m,
                                step=i)[0])(p)
    upd, state = opt.update(g, state, p)
    return optax.apply_updates(p, upd), state

  for i in range(400):
    p, state = step(p, state, i)
  xv, yv = _class_data(300, 1)
  key = jax.random.key(5)
  right = ev.dataset_elbo(p, cond_lib.Labeled(xv, yv), key, model=m)["elbo"]
  wrong = ev.dataset_elbo(p, cond_lib.Labeled(xv, (yv + 1) % K), key, model=m)["elbo"]
  assert right > wrong + 5.0, (right, wrong)


def test_evaluation_batches_labels_with_their_images():
  m = _model()
  p = model_lib.init_params(jax.random.key(0), m)
  b = _batch(n=10)
  data = cond_lib.Labeled(np.asarray(b.x), np.asarray(b.y))
  # 10 examples in batches of 4: a padded last batch.
  means = ev.posterior_means(p, data, model=m, batch_size=4)
  np.testing.assert_allclose(means, model_lib.encode_batch(p, b.x, model=m, y=b.y)[0],
                             rtol=1e-6, atol=1e-6)
  iw = ev.iwae_log_likelihood(p, data, jax.random.key(1), model=m, num_samples=3,
                              batch_size=4, return_per_example=True)["per_example"]
  assert iw.shape == (10,) and np.all(np.isfinite(iw))


def test_array_source_serves_each_image_with_its_own_label():
  x, y = _class_data(50, 2)
  m = _model()
  src = sources.make_source(x, 8, jax.random.key(0), model=m,
                            labels=data_lib.Labels(("a", "b", "c"), y))
  arrays = src.arrays()
  carry = src.init(arrays, 0)
  templates = _templates()
  for step in range(10):     # past an epoch boundary (6 steps per epoch)
    batch, carry = src.next(arrays, carry, step)
    assert isinstance(batch, cond_lib.Labeled)
    # Each image is its label's template up to the flipped pixels.
    dist = np.abs(np.asarray(batch.x)[:, None] - templates[None]).mean(axis=(2, 3, 4))
    np.testing.assert_array_equal(dist.argmin(axis=1), np.asarray(batch.y))


def test_ground_truth_source_labels_are_the_chosen_factor():
  from vae.data import dsprites
  gt = dsprites.DSprites()
  m = model_lib.make_model(architecture="conv", data_shape=(64, 64, 1), latent_dim=2,
                           num_classes=3)
  src = sources.make_source(gt, 4, jax.random.key(0), model=m,
                            labels=data_lib.Labels(("0", "1", "2"), factor=0))
  batch, _ = src.next(src.arrays(), src.init(src.arrays(), 7), 7)
  images, factors = gt.sample(jax.random.fold_in(jax.random.key(0), 7), 4)
  np.testing.assert_array_equal(batch.y, factors[:, 0])
  np.testing.assert_array_equal(batch.x, images)


def _folder(root, classes=("cat", "dog"), per_class=6):
  from PIL import Image
  for c, name in enumerate(classes):
    os.makedirs(os.path.join(root, name))
    for i in range(per_class):
      Image.fromarray(np.full((6, 6), 255 * c, np.uint8)).save(
          os.path.join(root, name, f"{i}.png"))
  return root


def test_labels_come_from_class_folder_names(tmp_path):
  root = _folder(str(tmp_path / "imgs"))
  opened = data_lib.open_dataset(data_lib.DataSettings(
      "images", root, data_shape=(6, 6, 1), label="class", validation_fraction=0.3))
  assert opened.labels.class_names == ("cat", "dog")
  # "dog" images are white, "cat" black: each label matches its pixels.
  np.testing.assert_array_equal(opened.labels.train,
                                (opened.train.pixels.reshape(len(opened.train), -1)[:, 0]
                                 > 0).astype(int))
  np.testing.assert_array_equal(opened.labels.eval, (opened.eval[:, 0, 0, 0] > 0.5).astype(int))
  assert len(opened.labels.eval) == len(opened.eval) > 0


@pytest.mark.parametrize("settings, message", [
    (dict(name="binarized_mnist", label="class"), "carries no classes"),
    (dict(name="images", data_dir="x.npz", data_shape=(6, 6, 1), label="class"),
     "subfolder names"),
    (dict(name="images", data_dir=".", data_shape=(6, 6, 1), label="class", source="stream"),
     "data_source='stream'"),
])
def test_labels_a_data_set_cannot_give_are_refused(settings, message):
  with pytest.raises(ValueError, match=message):
    data_lib.check_settings(data_lib.DataSettings(**settings))


def test_what_cannot_take_labels_says_so():
  m = _model()
  b = _batch()
  p = model_lib.init_params(jax.random.key(0), m)
  with pytest.raises(ValueError, match="does not take a conditional model"):
    objectives.get("beta_tcvae").check_model(m)
  with pytest.raises(ValueError, match="pass its integer label"):
    model_lib.encode(p, b.x[0], model=m)
  with pytest.raises(ValueError, match="must be vae.conditioning.Labeled"):
    model_lib.batch_elbo_terms(p, b.x, jax.random.key(0), model=m)
  with pytest.raises(ValueError, match="has no conditioning"):
    model_lib.batch_elbo_terms(model_lib.init_params(jax.random.key(0), _model(0)), b,
                               jax.random.key(0), model=_model(0))
  with pytest.raises(ValueError, match="prior N\\(0, I\\) whatever the label"):
    _model(prior="vampprior")
  with pytest.raises(ValueError, match="set model.num_classes=3"):
    sources.make_source(np.asarray(b.x), 4, jax.random.key(0), model=_model(5),
                        labels=data_lib.Labels(("a", "b", "c"), np.asarray(b.y)))
  with pytest.raises(ValueError, match=r"must lie in \[0, 3\)"):
    sources.make_source(np.asarray(b.x), 4, jax.random.key(0), model=m,
                        labels=data_lib.Labels(("a", "b", "c"), np.asarray(b.y) + 1))


def test_a_config_with_half_of_the_conditioning_is_refused():
  from vae_experiments.configs import cvae_images
  from vae_experiments.config_checks import check_config
  c = cvae_images.get_config()
  c.data_dir = "."
  c.label = ""
  with pytest.raises(ValueError, match="go together"):
    check_config(c)
  c.label, c.eval.metrics = "class", ("mig",)
  with pytest.raises(ValueError, match="eval.metrics"):
    check_config(c)


@pytest.mark.slow
def test_the_cvae_job_trains_evaluates_and_draws_a_row_per_class(tmp_path):
  """The whole job on a folder of labelled images: the class-conditional
  grid has a row per class, and its rows differ where the labels do."""
  import json

  from PIL import Image

  from vae_experiments import job as job_lib
  from vae_experiments.configs import cvae_images
  root = _folder(str(tmp_path / "imgs"), per_class=20)
  c = cvae_images.get_config()
  c.data_dir, c.model.num_classes, c.model.data_shape = root, 2, (6, 6, 1)
  c.model.encoder_hidden = c.model.decoder_hidden = (16,)
  c.num_steps, c.log_every, c.checkpoint_every, c.eval_every = 60, 20, 60, 60
  c.batch_size, c.eval.num_importance_samples = 8, 5
  work = str(tmp_path / "run")
  results = job_lib.train_and_evaluate(c, work, progress=False)
  assert np.isfinite(results["iwae"]["log_likelihood"])
  stored = json.load(open(os.path.join(work, "config.json")))
  assert stored["effective"]["data"]["classes"] == ["cat", "dog"]
  grid = np.asarray(Image.open(os.path.join(work, "prior_samples.png")))
  assert grid.ndim == 3


def test_a_truncated_labelled_folder_keeps_every_class():
  from vae.data import images
  labels = np.repeat(np.arange(4), 5)           # files sort by class folder
  rows = images.balanced_rows(labels, 8)
  np.testing.assert_array_equal(np.bincount(labels[rows], minlength=4), [2, 2, 2, 2])
  assert list(rows) == sorted(rows)


def test_labels_are_checked_for_their_dtype_and_their_classes(tmp_path):
  import json

  from vae_experiments import rerun
  m = _model()
  p = model_lib.init_params(jax.random.key(0), m)
  b = _batch()
  with pytest.raises(ValueError, match="labels must be integers"):
    model_lib.batch_elbo_terms(p, cond_lib.Labeled(b.x, b.y.astype(jnp.float32)),
                               jax.random.key(0), model=m)
  with pytest.raises(ValueError, match="set model.num_classes=2"):
    m.conditioning.check_classes(data_lib.Labels(("a", "b")).class_names)

  class Job:
    labels = data_lib.Labels(("0", "1", "2"))
  with open(tmp_path / "config.json", "w") as f:
    json.dump({"effective": {"data": {"classes": ["0", "2", "3"]}}}, f)
  with pytest.raises(ValueError, match="number the labels otherwise"):
    rerun.check_classes_unchanged(Job, str(tmp_path))
  from vae import plots
  with pytest.raises(ValueError, match="must be vae.conditioning.Labeled"):
    plots.save_run_figures(str(tmp_path), p, np.asarray(b.x), jax.random.key(0), model=m)

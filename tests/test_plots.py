import jax
import numpy as np

from vae import plots


def test_image_grid_layout():
  imgs = np.stack([np.full((4, 5, 1), i / 10) for i in range(7)])
  g = plots.image_grid(imgs, num_cols=3, pad=1)
  assert g.shape == (3 * 5 + 1, 3 * 6 + 1, 1)
  np.testing.assert_allclose(g[1:5, 1 + 6:6 + 6, 0], 0.1)  # second tile


def test_pngs_are_written(tiny_model, tiny_params, binary_images, tmp_path):
  p1 = plots.save_reconstructions(str(tmp_path / "r.png"), tiny_params, binary_images[:8],
                                  model=tiny_model)
  p2 = plots.save_prior_samples(str(tmp_path / "s.png"), tiny_params, jax.random.key(0),
                                model=tiny_model, num=16)
  for p in (p1, p2):
    with open(p, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  samples = plots.prior_samples(tiny_params, jax.random.key(0), 5, model=tiny_model)
  assert samples.shape == (5, 28, 28, 1) and samples.min() >= 0 and samples.max() <= 1


def test_traversal_rows_name_the_latent_and_its_kl_and_columns_the_value(
    tiny_model, tiny_params, tmp_path, monkeypatch):
  # Rows are labelled: which latent, how informative it is, and what value
  # each column sets.
  from vae import plots
  seen = {}
  real = plots.save_grid

  def spy(path, images, num_cols=None, **kw):
    seen.update(kw, images=np.asarray(images).shape, num_cols=num_cols)
    return real(path, images, num_cols, **kw)
  monkeypatch.setattr(plots, "save_grid", spy)
  kl = [0.5, 3.25, 0.0, 1.0]
  path = plots.save_traversals(str(tmp_path / "t.png"), tiny_params, np.zeros((28, 28, 1)),
                               model=tiny_model, kl_per_dim=kl, num_steps=5, span=2.0)
  assert seen["row_labels"] == ["z1  KL 3.25", "z3  KL 1.00", "z0  KL 0.50", "z2  KL 0.00"]
  assert seen["col_labels"] == ["-2.0", "-1.0", "+0.0", "+1.0", "+2.0"]
  assert seen["images"][0] == 4 * 5 and seen["num_cols"] == 5
  assert open(path, "rb").read(4) == b"\x89PNG"


def test_run_figures_name_the_factor_each_traversal_row_moves(
    tiny_model, tiny_params, binary_images, tmp_path, monkeypatch):
  # With notes (the factor each latent informs, from MIG), the PNG's rows
  # carry them after the KL, and the GIF gets one labelled row per latent.
  from PIL import Image
  seen = {}
  real = plots.save_grid

  def spy(path, images, num_cols=None, **kw):
    if path.endswith("traversals.png"):
      seen.update(kw)
    return real(path, images, num_cols, **kw)
  monkeypatch.setattr(plots, "save_grid", spy)
  kl = [0.5, 3.25, 0.0, 1.0]
  notes = ["posX (0.61)", "scale (0.55)", "shape (0.02)", "posY (0.40)"]
  plots.save_run_figures(str(tmp_path / "a"), tiny_params, binary_images[:4], jax.random.key(0),
                         model=tiny_model, kl_per_dim=kl, latent_notes=notes)
  assert seen["row_labels"] == ["z1  KL 3.25  scale (0.55)", "z3  KL 1.00  posY (0.40)",
                                "z0  KL 0.50  posX (0.61)", "z2  KL 0.00  shape (0.02)"]
  plots.save_run_figures(str(tmp_path / "b"), tiny_params, binary_images[:4], jax.random.key(0),
                         model=tiny_model, kl_per_dim=kl)
  labelled = Image.open(tmp_path / "a" / "traversals.gif")
  plain = Image.open(tmp_path / "b" / "traversals.gif")
  # 28-pixel tiles at scale 2: four rows against one row of four panels.
  assert labelled.height > 4 * 2 * 28 > plain.height
  assert plain.width > 4 * 2 * 28

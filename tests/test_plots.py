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

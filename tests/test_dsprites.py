"""Procedural dSprites: geometry, invariances, indexing, jit, training."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae.data import dsprites, load_ground_truth
from vae.data.dsprites import DSprites, render
from experiments import job as job_lib

DS = DSprites()
render_jit = jax.jit(render)


# A generic position (centre not on the pixel grid), so that no pixel centre
# lies exactly on an outline and float rounding decides nothing.
def _img(shape, scale, orientation, px=0.513, py=0.487):
  return np.asarray(render_jit(shape, scale, orientation, px, py))[..., 0]


def _bbox(img):
  rows, cols = np.nonzero(img)
  return cols.max() - cols.min() + 1, rows.max() - rows.min() + 1


def _com(img):
  rows, cols = np.nonzero(img)
  return cols.mean(), rows.mean()


def test_factor_layout_matches_the_public_file():
  assert DS.factor_names == ("shape", "scale", "orientation", "posX", "posY")
  assert DS.factor_sizes == (3, 6, 40, 32, 32)
  assert DS.num_combinations == 737_280
  np.testing.assert_allclose(dsprites.SCALES, np.linspace(0.5, 1, 6))
  # posY varies fastest, then posX, orientation, scale, shape.
  np.testing.assert_array_equal(DS.index_to_factors(np.arange(3)), [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1],
                                                                   [0, 0, 0, 0, 2]])
  np.testing.assert_array_equal(DS.index_to_factors(np.array(32)), [0, 0, 0, 1, 0])
  np.testing.assert_array_equal(DS.index_to_factors(np.array(737_279)), [2, 5, 39, 31, 31])


def test_index_and_factors_round_trip_over_all_combinations():
  idx = np.arange(DS.num_combinations)
  f = DS.index_to_factors(idx)
  assert f.shape == (737_280, 5)
  np.testing.assert_array_equal(DS.factors_to_index(f), idx)
  assert len(np.unique(f, axis=0)) == 737_280
  # The jnp path agrees with the numpy path.
  some = jnp.asarray(idx[::997])
  np.testing.assert_array_equal(np.asarray(DS.factors_to_index(DS.index_to_factors(some))), idx[::997])


def test_sizes_at_scale_one_and_axis_of_the_ellipse():
  # The fitted geometry: square side 19.2 px, ellipse 25.5 x 14.4 px (major
  # axis horizontal), heart 19.2 x 19.2 px; a bounding box counts whole pixels.
  assert _bbox(_img(0, 1.0, 0.0)) in {(19, 19), (19, 20), (20, 19), (20, 20)}
  w, h = _bbox(_img(1, 1.0, 0.0))
  assert w in (25, 26) and h in (14, 15)
  w, h = _bbox(_img(2, 1.0, 0.0))
  assert w in (19, 20) and h in (19, 20)


REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsprites_reference" / "grid.npz"


@pytest.mark.slow
@pytest.mark.skipif(not REFERENCE.exists(), reason=f"no real dSprites images at {REFERENCE}")
def test_renders_match_the_real_dsprites_images():
  """Every grid image of the public file (46,080: all shapes and scales, every
  4th orientation, every 2nd position) against our render of its factors."""
  ref = np.load(REFERENCE)
  real, classes = ref["images"].astype(bool), ref["classes"].astype(np.int32)
  assert real.shape == (46_080, 64, 64) and classes.shape == (46_080, 5)
  # The stored row of the public file is our index of the same factors.
  np.testing.assert_array_equal(DS.factors_to_index(classes.astype(np.int64)), ref["index"])
  obs = jax.jit(DS.observations)
  ours = np.concatenate([np.asarray(obs(jnp.asarray(classes[i:i + 8192])))[..., 0] > 0.5
                         for i in range(0, len(classes), 8192)])
  iou = (ours & real).sum((1, 2)) / (ours | real).sum((1, 2))
  exact = (ours == real).all((1, 2))
  rows = [(name, classes[:, 0] == s) for s, name in enumerate(dsprites.SHAPES)]
  rows.append(("all", np.ones(len(classes), bool)))
  print("\n| shape | mean IoU | min IoU | pixel-exact |\n|---|---|---|---|")
  for name, m in rows:
    print(f"| {name} | {iou[m].mean():.4f} | {iou[m].min():.3f} | {100 * exact[m].mean():.1f}% |")
  assert iou.mean() >= 0.998 and iou.min() >= 0.80 and exact.mean() >= 0.85
  for name, m in rows:
    assert iou[m].mean() >= 0.995, name


def test_heart_has_lobes_up_and_point_down():
  img = _img(2, 1.0, 0.0)
  rows = np.nonzero(img)[0]
  top_width = img[rows.min() + 3].sum()
  bottom_width = img[rows.max() - 1].sum()
  assert top_width > 3 * bottom_width                 # wide lobes above, a point below
  # The two lobes: a notch in the middle of the top row.
  top = img[rows.min()]
  cols = np.nonzero(top)[0]
  assert top[(cols.min() + cols.max()) // 2] == 0


def test_orientation_rotates_counter_clockwise_on_screen():
  img = _img(1, 1.0, np.pi / 4)                      # ellipse turned 45 degrees
  rows, cols = np.nonzero(img)
  # CCW on screen: the major axis runs from lower-left to upper-right, so
  # column and row are negatively correlated (rows grow downwards).
  assert np.corrcoef(cols, rows)[0, 1] < -0.5
  heart = _img(2, 1.0, np.pi / 2)                    # lobes turned to the left
  c, _ = _com(heart)
  assert c < 31.5                                    # mass (the lobes) left of centre


def test_position_moves_the_centre_by_the_expected_pixels():
  for shape in range(3):
    x0, y0 = _com(_img(shape, 1.0, 0.7, 0.0, 0.5))
    x1, y1 = _com(_img(shape, 1.0, 0.7, 1.0, 0.5))
    assert x1 - x0 == pytest.approx(32.0, abs=0.5)
    assert y1 - y0 == pytest.approx(0.0, abs=0.5)
    _, ya = _com(_img(shape, 1.0, 0.7, 0.5, 0.0))
    _, yb = _com(_img(shape, 1.0, 0.7, 0.5, 1.0))
    assert yb - ya == pytest.approx(32.0, abs=0.5)   # posY grows downwards
  # A square at pos 0 is centred on x = y = 16, the corner of pixels 15 and 16.
  assert _com(_img(0, 1.0, 0.0, 0.0, 0.0)) == pytest.approx((15.5, 15.5), abs=0.01)


def test_scale_changes_area_by_its_square():
  for shape in range(3):
    a1, a05 = _img(shape, 1.0, 0.3).sum(), _img(shape, 0.5, 0.3).sum()
    assert a1 / a05 == pytest.approx(4.0, rel=0.12), shape


@pytest.mark.parametrize("theta", [0.0, 0.3, 1.1, 2.5])
def test_symmetries(theta):
  sq, sq90 = _img(0, 0.8, theta), _img(0, 0.8, theta + np.pi / 2)
  el, el180 = _img(1, 0.8, theta), _img(1, 0.8, theta + np.pi)
  # Only pixels whose centres lie on the boundary (float rounding) may differ.
  assert np.sum(sq != sq90) <= 4
  assert np.sum(el != el180) <= 4
  hr, hr180 = _img(2, 0.8, theta), _img(2, 0.8, theta + np.pi)
  assert np.sum(hr != hr180) > 20                    # the heart has no such symmetry


def test_observations_are_binary_deterministic_and_jit():
  f = DS.sample_factors(jax.random.key(0), 64)
  a = jax.jit(DS.observations)(f)
  b = DS.observations(f)
  assert a.shape == (64, 64, 64, 1) and a.dtype == jnp.float32
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert set(np.unique(np.asarray(a))) <= {0.0, 1.0}
  imgs, fs = jax.jit(lambda k: DS.sample(k, 8))(jax.random.key(1))
  assert imgs.shape == (8, 64, 64, 1) and fs.shape == (8, 5)
  np.testing.assert_array_equal(np.asarray(imgs), np.asarray(DS.observations(fs)))


def _check_inside(factors):
  obs = jax.jit(DS.observations)
  bad_empty, bad_edge = 0, 0
  for start in range(0, len(factors), 8192):
    img = np.asarray(obs(jnp.asarray(factors[start:start + 8192])))[..., 0]
    bad_empty += int(np.sum(img.sum(axis=(1, 2)) == 0))
    edge = img[:, 0].sum(1) + img[:, -1].sum(1) + img[:, :, 0].sum(1) + img[:, :, -1].sum(1)
    bad_edge += int(np.sum(edge > 0))
  assert bad_empty == 0 and bad_edge == 0, (bad_empty, bad_edge)


def test_extreme_combinations_are_non_empty_and_inside_the_canvas():
  grid = np.stack(np.meshgrid(np.arange(3), [0, 5], np.arange(40), [0, 31], [0, 31],
                              indexing="ij"), -1).reshape(-1, 5)
  _check_inside(grid.astype(np.int32))


@pytest.mark.slow
def test_every_combination_is_non_empty_and_inside_the_canvas():
  # All 737,280 renders, in chunks: about 20 s on one CPU core.
  _check_inside(DS.index_to_factors(np.arange(DS.num_combinations)).astype(np.int32))


def test_bad_factors_are_rejected():
  with pytest.raises(ValueError, match=r"factors must have shape \[n, 5\]"):
    DS.check_factors(np.zeros((3, 4), np.int32))
  with pytest.raises(ValueError, match=r"factor orientation must be in \[0, 40\), got 40"):
    DS.check_factors(np.array([[0, 0, 40, 0, 0]]))


def test_contact_sheet(tmp_path):
  p = dsprites.contact_sheet(str(tmp_path / "sheet.png"))
  assert open(p, "rb").read(4) == b"\x89PNG"


@pytest.mark.slow
def test_training_on_procedural_dsprites_lowers_the_loss(tmp_path):
  from experiments.configs import default
  c = default.get_config()
  c.model.architecture = "mlp"            # small and fast for the test
  c.model.encoder_hidden = (64,)
  c.model.decoder_hidden = (64,)
  c.num_steps = 200
  c.log_every = 100
  c.checkpoint_every = 200
  c.eval_every = 0
  c.optim.learning_rate = 1e-3
  state = job_lib.train(c, str(tmp_path), load_ground_truth("dsprites"), progress=False)
  import json
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert int(state.step) == 200
  assert rows[-1]["loss"] < 0.6 * rows[0]["loss"], rows

"""Your own images (vae/data/images.py): folders of PNG/JPEG files the tests
write themselves, and .npz files; trained and evaluated through the job."""

import json
import os

import jax
import numpy as np
import pytest
from PIL import Image

from experiments import job as job_lib
from experiments.configs import smoke
from vae.data import images


def write_folder(root, n=60, rgb=True, sizes=((40, 48), (80, 64)), seed=0, fmt="png"):
  """``n`` images of bright rectangles on dark ground, in two class
  subfolders, at two sizes (w, h), so the loader must resize."""
  rng = np.random.default_rng(seed)
  paths = []
  for i in range(n):
    w, h = sizes[i % len(sizes)]
    img = np.full((h, w, 3), 20, np.uint8)
    y, x = rng.integers(0, h // 2), rng.integers(0, w // 2)
    img[y:y + h // 3, x:x + w // 3] = rng.integers(120, 256, 3)
    cls = "squares" if i % 3 else "circles"
    os.makedirs(os.path.join(root, cls), exist_ok=True)
    path = os.path.join(root, cls, f"img_{i:03d}.{fmt}")
    Image.fromarray(img if rgb else img[..., 0]).save(path)
    paths.append(path)
  return paths


def image_config(data_dir, data_shape, data_source="memory"):
  c = smoke.get_config()
  c.dataset = "images"
  c.data_dir = str(data_dir)
  c.data_source = data_source
  c.model.data_shape = data_shape
  c.model.likelihood = "cross_entropy"
  c.max_train_examples = 0
  c.batch_size = 16
  c.num_steps = 20
  c.log_every = 10
  c.checkpoint_every = 10
  c.eval_every = 10
  c.eval.max_examples = 0
  c.eval.num_importance_samples = 4
  c.tensorboard = False
  return c


def _params(workdir):
  c = job_lib.load_run_config(workdir)
  job = job_lib.resolve(c, with_data=False)
  return jax.tree.leaves(job_lib.restore_state(workdir, job).params)


@pytest.mark.slow
@pytest.mark.parametrize("rgb,data_shape", [(True, (24, 24, 3)), (False, (16, 20, 1))])
def test_a_folder_of_images_trains_and_evaluates_in_memory_and_streamed(tmp_path, rgb, data_shape):
  write_folder(tmp_path / "imgs", rgb=rgb)
  results = {}
  for kind in ("memory", "stream"):
    wd = str(tmp_path / kind)
    res = job_lib.train_and_evaluate(image_config(tmp_path / "imgs", data_shape, kind), wd,
                                     progress=False)
    assert res["step"] == 20 and np.isfinite(res["elbo"]["elbo"])
    assert res["elbo"]["elbo"] < 0      # cross-entropy of non-binary pixels: below 0
    assert os.path.exists(os.path.join(wd, "reconstructions.png"))
    rows = [json.loads(line) for line in open(os.path.join(wd, "metrics.jsonl"))]
    assert [r["step"] for r in rows if r["split"] == "train"] == [10, 20]
    results[kind] = (res, _params(wd))
  # The streaming source reads the same batches from the files as the
  # in-memory source serves from the device: the same run, bit for bit.
  for a, b in zip(results["memory"][1], results["stream"][1]):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert results["memory"][0]["elbo"]["elbo"] == results["stream"][0]["elbo"]["elbo"]


def test_images_are_converted_resized_and_labelled(tmp_path):
  paths = write_folder(tmp_path, n=12, rgb=True)
  got = images.load_images(str(tmp_path), (32, 30, 1), "all", labels=True)
  assert got.pixels.shape == (12, 32, 30, 1) and got.pixels.dtype == np.uint8
  assert got.scale == 1 / 255 and got.as_float().max() <= 1.0
  assert got.class_names == ("circles", "squares")
  rel = [os.path.relpath(p, tmp_path) for p in paths]
  assert list(got.names) == sorted(rel)
  want = [0 if r.startswith("circles") else 1 for r in sorted(rel)]
  np.testing.assert_array_equal(got.labels, want)
  # One file by hand: PIL's grayscale conversion and Lanczos resize.
  first = sorted(rel)[0]
  with Image.open(tmp_path / first) as im:
    ref = np.asarray(im.convert("L").resize((30, 32), Image.LANCZOS))
  np.testing.assert_array_equal(got.pixels[0, ..., 0], ref)


def test_the_validation_split_is_deterministic_and_stable(tmp_path):
  write_folder(tmp_path, n=80)
  shape = (8, 8, 3)
  train = images.load_images(str(tmp_path), shape, "train", validation_fraction=0.25)
  valid = images.load_images(str(tmp_path), shape, "validation", validation_fraction=0.25)
  assert set(train.names).isdisjoint(valid.names)
  assert len(train) + len(valid) == 80 and 8 <= len(valid) <= 32
  again = images.load_images(str(tmp_path), shape, "validation", validation_fraction=0.25)
  assert again.names == valid.names
  # New files do not move old ones between the splits.
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "squares" / "zzz_new.png")
  after = images.load_images(str(tmp_path), shape, "validation", validation_fraction=0.25)
  assert set(valid.names) <= set(after.names)


def test_an_unreadable_image_is_named_in_the_error(tmp_path):
  write_folder(tmp_path / "imgs", n=20)
  bad = tmp_path / "imgs" / "squares" / "img_007.png"
  bad.write_bytes(bad.read_bytes()[:40])           # truncated
  with pytest.raises(images.UnreadableImageError, match="img_007.png"):
    images.load_images(str(tmp_path / "imgs"), (16, 16, 3), "all")
  (tmp_path / "imgs" / "notes.png").write_text("not an image")
  with pytest.raises(images.UnreadableImageError, match="notes.png"):
    images.read_image(str(tmp_path / "imgs" / "notes.png"), (16, 16, 3))


def test_a_streamed_run_names_an_unreadable_file_met_while_training(tmp_path):
  write_folder(tmp_path / "imgs", n=40)
  reader = images.image_reader(str(tmp_path / "imgs"), (16, 16, 3), "train",
                               validation_fraction=0.1)
  # Damage a file that the first batch does not read, so the run starts and
  # the background reader meets it.
  from vae.data import streaming
  src = streaming.StreamingSource(reader, 8, jax.random.key(0), prefetch=2)
  first = set(src.batch_rows(0)[:8].tolist())
  victim = next(i for i in range(reader.num_examples) if i not in first)
  path = os.path.join(reader.root, reader.files[victim])
  open(path, "wb").write(b"\x89PNG broken")
  with pytest.raises(images.UnreadableImageError, match=os.path.basename(path)):
    for s in range(reader.num_examples // 8 + 1):
      src.host_chunk(s, 1)
  src.close()


def test_an_npz_of_images_loads_and_a_bad_one_says_what_it_holds(tmp_path):
  x = np.random.default_rng(0).integers(0, 256, (30, 12, 12, 3), dtype=np.uint8)
  np.savez(tmp_path / "a.npz", images=x)
  got = images.load_images(str(tmp_path / "a.npz"), (12, 12, 3), "all")
  np.testing.assert_array_equal(got.pixels, x)
  assert got.scale == 1 / 255
  np.savez(tmp_path / "b.npz", first=x, second=x)
  with pytest.raises(ValueError, match=r"must hold an array named 'images'.*\['first', 'second'\]"):
    images.load_images(str(tmp_path / "b.npz"), (12, 12, 3))


def test_images_config_without_a_folder_says_so(tmp_path):
  c = image_config("", (16, 16, 3))
  with pytest.raises(ValueError, match="dataset=.images. needs data_dir"):
    job_lib.check_config(c)
  c = image_config(tmp_path, (16, 16, 2))
  with pytest.raises(ValueError, match=r"\(H, W, 1\) for grayscale or \(H, W, 3\)"):
    job_lib.check_config(c)


def test_an_npy_is_memory_mapped_and_streams(tmp_path):
  x = np.random.default_rng(1).integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
  np.save(tmp_path / "x.npy", x)
  reader = images.image_reader(str(tmp_path / "x.npy"), (8, 8, 3), "all")
  assert isinstance(reader.array, np.memmap)       # nothing loaded up front
  np.testing.assert_array_equal(reader.read(np.array([3, 1, 30])), x[[3, 1, 30]])
  assert reader.scale == 1 / 255
  # Splits share the whole file's scale, and 0/1 files keep scale 1.
  np.save(tmp_path / "b.npy", (x > 128).astype(np.uint8))
  for split in ("train", "validation"):
    assert images.image_reader(str(tmp_path / "b.npy"), (8, 8, 3), split).scale == 1.0


def test_16_bit_images_are_rescaled_not_clipped(tmp_path):
  ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
  Image.fromarray(ramp).save(tmp_path / "ramp.png")       # a 16-bit PNG
  got = images.read_image(str(tmp_path / "ramp.png"), (8, 8, 1))[..., 0]
  np.testing.assert_array_equal(got, np.round(ramp * 255.0 / 65535).astype(np.uint8))


@pytest.mark.slow
def test_a_rerun_on_other_images_is_refused(tmp_path):
  write_folder(tmp_path / "a", n=40)
  write_folder(tmp_path / "b", n=40, seed=1)
  c = image_config(tmp_path / "a", (16, 16, 3))
  c.num_steps = c.log_every = c.checkpoint_every = c.eval_every = 10
  job_lib.train_and_evaluate(c, str(tmp_path / "wd"), progress=False)
  other = image_config(tmp_path / "b", (16, 16, 3))
  other.num_steps = other.log_every = other.checkpoint_every = other.eval_every = 10
  with pytest.raises(job_lib.ConfigChangedError, match="data_dir"):
    job_lib.check_rerun(other, str(tmp_path / "wd"))
  # Same folder, more images: N and every epoch's order change.
  write_folder(tmp_path / "a", n=50, seed=3)
  c.num_steps = 20
  with pytest.raises(job_lib.ConfigChangedError, match="num_train"):
    job_lib.train_and_evaluate(c, str(tmp_path / "wd"), progress=False)

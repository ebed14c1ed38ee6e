"""Shared fixtures: small binary images made by the code itself (no files
needed), and the offline binarized MNIST when ../shared/data has it."""

import os

from vae import allocator

allocator.tune()   # as the console scripts do: the tests train at their speed

# JAX's persistent compilation cache (vae/compile_cache.py), one per test run
# (shared by its xdist workers and the processes the CLI tests start): many
# tests compile the same programs. VAE_COMPILATION_CACHE=0 turns it off.
if os.environ.get("VAE_COMPILATION_CACHE", "").strip().lower() not in ("0", "off", "false",
                                                                        "none"):
  import tempfile
  from vae import compile_cache
  _run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())
  os.environ["VAE_COMPILATION_CACHE"] = os.path.join(tempfile.gettempdir(),
                                                     f"vae-test-xla-cache-{_run}")
  compile_cache.enable(os.environ["VAE_COMPILATION_CACHE"], min_compile_seconds=0.2)

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from experiments.configs import smoke  # noqa: E402
from vae import model as model_lib  # noqa: E402

SHARED_MNIST = os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                            "data", "binarized_mnist")


def make_binary_images(n: int, seed: int = 0, size: int = 28) -> np.ndarray:
  """[n, size, size, 1] uint8 images of random axis-aligned bars and boxes:
  structured enough for a VAE to learn, no download needed."""
  rng = np.random.default_rng(seed)
  imgs = np.zeros((n, size, size, 1), np.uint8)
  for i in range(n):
    kind = rng.integers(3)
    a, b = sorted(rng.integers(2, size - 2, size=2))
    c = rng.integers(2, size - 6)
    if kind == 0:
      imgs[i, a:b + 1, c:c + 4] = 1
    elif kind == 1:
      imgs[i, c:c + 4, a:b + 1] = 1
    else:
      imgs[i, a:b + 1, a:b + 1] = 1
  return imgs


def write_npz_dataset(folder, train_n=600, valid_n=200) -> str:
  os.makedirs(folder, exist_ok=True)
  np.savez(os.path.join(folder, "train.npz"), image=make_binary_images(train_n, 1)[..., 0])
  np.savez(os.path.join(folder, "valid.npz"), image=make_binary_images(valid_n, 2)[..., 0])
  return str(folder)


FAST_SUITE_XLA_FLAG = "--xla_backend_optimization_level=0"


def pytest_configure(config):
  """The fast suite (``-m 'not slow'``, README's test command) compiles XLA's
  CPU code without LLVM's optimisation passes: its tests compile many small
  programs and run each a few steps, so the passes cost more than they save
  (measured: the conv equivalence tests 141 s -> 87 s, the whole suite 839 s
  -> 716 s on a busy 2-core AMD EPYC). XLA's own HLO passes, fusion
  included, run as before; what changes is the machine code, and with it the
  last bits of float32 results (the conv VAE's gradients of three objectives
  differ from the default level's by at most 4e-6 relative; the losses are
  equal). Every comparison within one test runs at one level, so bit-for-bit
  checks hold at either. Slow tests, which train longer and render all of
  dSprites, keep the default level, as users' runs do. A level in the
  caller's XLA_FLAGS wins.
  Set here, before any test touches a device: jax starts its backend, and
  reads XLA_FLAGS, at the first computation; the subprocesses tests start
  inherit it."""
  if (config.getoption("markexpr", "") or "").replace(" ", "") != "notslow":
    return
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_backend_optimization_level" not in flags:
    os.environ["XLA_FLAGS"] = f"{flags} {FAST_SUITE_XLA_FLAG}".strip()


@pytest.fixture(scope="session")
def binary_images():
  return make_binary_images(512)


@pytest.fixture(scope="session")
def npz_dir(tmp_path_factory):
  return write_npz_dataset(tmp_path_factory.mktemp("bmnist"))


@pytest.fixture
def smoke_config(npz_dir):
  c = smoke.get_config()
  c.data_dir = npz_dir
  c.max_train_examples = 0
  c.eval.max_examples = 0
  return c


@pytest.fixture(scope="session")
def tiny_model():
  return model_lib.make_model(architecture="mlp", data_shape=(28, 28, 1),
                              latent_dim=4, encoder_hidden=(32,),
                              decoder_hidden=(32,), activation="tanh")


@pytest.fixture(scope="session")
def tiny_params(tiny_model):
  return model_lib.init_params(jax.random.key(0), tiny_model)

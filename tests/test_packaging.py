"""Packaging: a publishable distribution name, console
scripts that work from any directory with the configs reachable by name, no
generic top-level package in site-packages; the configs are discoverable."""

import os
import subprocess
import sys
import tomllib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = ("vae-train", "vae-evaluate", "vae-benchmark", "vae-sweep", "vae-study")


def _pyproject():
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    return tomllib.load(f)


def _script(name):
  return os.path.join(os.path.dirname(sys.executable), name)


def test_the_distribution_and_packages_avoid_taken_names():
  meta = _pyproject()
  assert meta["project"]["name"] == "vae-jax"          # "vae" is taken on PyPI
  listed = set(meta["tool"]["setuptools"]["packages"])
  # Every package folder of the tree is listed (vae/..., experiments/ as vae_experiments).
  tree = set()
  for top, name in (("vae", "vae"), ("experiments", "vae_experiments")):
    for d, _, files in os.walk(os.path.join(ROOT, top)):
      if "__init__.py" in files:
        rel = os.path.relpath(d, os.path.join(ROOT, top))
        tree.add(name if rel == "." else name + "." + rel.replace(os.sep, "."))
  assert listed == tree
  assert "experiments" not in listed
  assert set(meta["project"]["scripts"]) == set(SCRIPTS)


def test_outside_a_checkout_vae_experiments_is_importable_and_experiments_is_not(tmp_path):
  code = ("import importlib.util as u; "
          "print(u.find_spec('experiments') is None, u.find_spec('vae_experiments') is not None)")
  out = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), capture_output=True,
                       text=True, timeout=120)
  assert out.stdout.split() == ["True", "True"], out.stderr[-2000:]


@pytest.mark.slow
def test_the_console_scripts_run_from_outside_the_checkout(tmp_path):
  summaries = {"vae-train": "Train and evaluate one configuration.",
               "vae-evaluate": "Evaluate a workdir's latest checkpoint",
               "vae-benchmark": "Throughput benchmarks", "vae-sweep": "Expand a config's hyperparameter sweep",
               "vae-study": "Run a named study"}
  for name in SCRIPTS:
    # absl answers --help with its usage and exit code 1.
    out = subprocess.run([_script(name), "--help"], cwd=str(tmp_path), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode in (0, 1) and "Traceback" not in out.stderr, (name, out.stderr[-2000:])
    assert out.stdout.startswith(summaries[name]), (name, out.stdout[:200])


def test_list_configs_names_every_config_with_its_summary(tmp_path):
  from experiments import configs
  out = subprocess.run([_script("vae-train"), "--list_configs"], cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=120)
  assert out.returncode == 0, out.stderr[-2000:]
  files = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "experiments", "configs"))
                 if f.endswith(".py") and not f.startswith("_"))
  listed = [line.split()[0] for line in out.stdout.splitlines() if line.strip()]
  assert listed == files
  assert "VAE, 784-200-200-50 tanh MLP" in out.stdout
  help_text = subprocess.run([_script("vae-train"), "--help"], cwd=str(tmp_path),
                             capture_output=True, text=True, timeout=120).stdout
  for name in files:
    assert f"  {name} " in help_text, name
  assert configs.available()["smoke"].startswith("A tiny setting for tests and CI")


def test_config_names_resolve_to_the_files_and_unknown_names_list_them():
  from experiments import configs
  path = configs.resolve("iwae_binarized_mnist:k50")
  assert path == os.path.join(ROOT, "experiments", "configs", "iwae_binarized_mnist.py") + ":k50"
  own = os.path.join(ROOT, "experiments", "configs", "smoke.py")
  assert configs.resolve(own) == own                    # a path stays a path
  assert configs.resolve_config_names(["prog", "--config", "smoke", "--config=default"]) == [
      "prog", "--config", own, "--config=" + configs.resolve("default")]
  with pytest.raises(ValueError, match=r"(?s)neither a file nor a config name.*smoke"):
    configs.resolve("smokee")


def test_a_folder_named_like_a_config_does_not_shadow_it(tmp_path, monkeypatch):
  from experiments import configs
  monkeypatch.chdir(tmp_path)
  (tmp_path / "smoke").mkdir()                          # e.g. --workdir smoke
  assert configs.resolve("smoke") == os.path.join(ROOT, "experiments", "configs", "smoke.py")


def test_notebooks_and_readme_keep_no_repository_url():
  # The address lives in pyproject's [project.urls] only; no badge that
  # cannot work.
  url = _pyproject()["project"]["urls"]["Repository"]
  for rel in ["README.md"] + [os.path.join("notebooks", f)
                              for f in os.listdir(os.path.join(ROOT, "notebooks"))]:
    text = open(os.path.join(ROOT, rel)).read()
    assert "github.com/" not in text and url not in text, rel
    assert "colab-badge" not in text, rel

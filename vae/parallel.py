"""Data parallelism with JAX's SPMD partitioner: a mesh, shardings, multi-host.

One code path for one device and many: the training loops take a
``jax.sharding.Mesh`` with one axis named ``data``; the batch drawn inside the
jitted loop is constrained to be split along that axis, the state is
replicated, and XLA inserts the gradient all-reduce. One device is a mesh of
size 1. Across processes, ``jax.distributed.initialize`` joins the hosts into
one global mesh; every process runs the same program, and each device gathers
only its own rows of the global batch.

References:
  Xu et al. (2021), GSPMD: General and Scalable Parallelization for ML
  Computation Graphs (the partitioner behind ``jax.jit`` shardings).
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh named ``data`` over ``devices`` (default: all, every process)."""
  devices = list(jax.devices() if devices is None else devices)
  return Mesh(np.array(devices), (DATA_AXIS,))


def _single_device(mesh: Mesh | None) -> bool:
  """A mesh of one device: use plain single-device placement. Sharding
  annotations on a one-device program slow the MLP VAE's step on XLA:CPU
  and buy nothing."""
  return mesh is None or mesh.size == 1


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (example) axis split across the ``data`` axis."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Places every leaf, replicated, on all devices of ``mesh``.

  Works across processes: each process supplies the (identical) host value
  for its own devices, so the result is one global array. Leaves already
  replicated on ``mesh`` are returned as they are (no host round trip). On a
  one-device mesh this is ``jax.device_put`` to that device.
  """
  if _single_device(mesh):
    return jax.device_put(tree, mesh.devices.flat[0])
  sharding = replicated(mesh)

  def put(x):
    if isinstance(x, jax.Array) and x.sharding.is_equivalent_to(sharding, x.ndim):
      return x
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      data = np.asarray(jax.random.key_data(x))
      arr = jax.make_array_from_callback(data.shape, sharding, lambda i: data[i])
      return jax.random.wrap_key_data(arr, impl=jax.random.key_impl(x))
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      x = x.addressable_data(0)   # a replicated global array: any local copy
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda i: host[i])
  return jax.tree.map(put, tree)


def shard_host_batch(batch: np.ndarray, mesh: Mesh | None):
  """A host batch (the same on every process) as one global array split
  along ``data``; each device receives only its rows. None or one device:
  unchanged."""
  if _single_device(mesh):
    return batch
  if not isinstance(batch, np.ndarray) and jax.tree.leaves(batch) != [batch]:
    # A pytree of host arrays (a conditional model's Labeled(x, y)): each
    # split alike along its first axis.
    return jax.tree.map(lambda a: shard_host_batch(np.asarray(a), mesh), batch)
  check_batch_divides(batch.shape[0], mesh)
  return jax.make_array_from_callback(batch.shape, batch_sharding(mesh), lambda i: batch[i])


def to_host(x) -> np.ndarray:
  """A (possibly multi-process) global array as a full host array on every
  process."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    from jax.experimental import multihost_utils
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)


def constrain_batch(batch: jax.Array, mesh: Mesh | None) -> jax.Array:
  """Inside jit: split ``batch`` along ``data`` (a no-op without a mesh or
  on one device)."""
  if _single_device(mesh):
    return batch
  return jax.lax.with_sharding_constraint(batch, batch_sharding(mesh))


def check_batch_divides(batch_size: int, mesh: Mesh) -> None:
  if int(batch_size) % mesh.size:
    raise ValueError(f"batch_size ({batch_size}) must be divisible by the number of "
                     f"devices in the mesh ({mesh.size})")


def initialize_distributed(coordinator_address: str = "", num_processes: int = -1,
                           process_id: int = -1) -> None:
  """``jax.distributed.initialize`` for a multi-host run; call it before
  anything else touches JAX.

  Args:
    coordinator_address: "host:port" of process 0.
    num_processes, process_id: this run's size and rank.
    Left empty / -1, each is read from the cluster environment (SLURM, TPU
    pods, ...), as ``jax.distributed.initialize`` does.
  """
  kwargs = {}
  if coordinator_address:
    kwargs["coordinator_address"] = coordinator_address
  if int(num_processes) > 0:
    kwargs["num_processes"] = int(num_processes)
  if int(process_id) >= 0:
    kwargs["process_id"] = int(process_id)
  jax.distributed.initialize(**kwargs)

"""vae.conv and networks.Conv4x4: the same function, parameters and gradients
as flax's Conv / ConvTranspose (4x4, stride 2, 'SAME')."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae import conv, networks

# Every layer of the disentanglement_lib networks (batch 2), then odd sizes.
CONV_SHAPES = [((2, 64, 64), 1, 32), ((2, 32, 32), 32, 32), ((2, 16, 16), 32, 64),
               ((2, 8, 8), 64, 64), ((3, 9, 7), 3, 5), ((2, 5, 6), 2, 40), ((1, 7, 7), 1, 4),
               ((64, 64), 3, 8)]
# Transposed convs with C <= conv.DECONV_SHIFT_MAX_C (the layer 16x16x32 ->
# 32x32x32 and the small odd ones) run as the adjoint of a stride-2 conv.
DECONV_SHAPES = [((2, 4, 4), 64, 64), ((2, 8, 8), 64, 32), ((2, 16, 16), 32, 32),
                 ((2, 32, 32), 32, 1), ((3, 5, 3), 3, 7), ((1, 1, 1), 2, 2), ((7, 6), 4, 3),
                 # more than DECONV_SHIFT_MAX_C input channels: the 16-tap GEMM form
                 ((3, 5, 3), 40, 24), ((1, 1, 1), 33, 16), ((7, 6), 48, 20),
                 # few output channels (4F <= C): the backward pass is the adjoint conv
                 ((2, 32, 32), 32, 3), ((3, 5, 3), 8, 2), ((1, 1, 1), 4, 1), ((7, 6), 12, 3)]


def _relative(a, b):
  return float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(b)) + 1e-30))


def _compare(ours, ref, x, kernel):
  y_ref = ref(x, kernel)
  cot = jax.random.normal(jax.random.key(2), y_ref.shape)

  @jax.jit
  def outputs_and_grads(x, kernel):
    value = lambda fn: (fn(x, kernel), jax.grad(lambda x, k: jnp.sum(fn(x, k) * cot),
                                                argnums=(0, 1))(x, kernel))
    return value(ours), value(ref)
  (y_ours, g_ours), (y_ref, g_ref) = outputs_and_grads(x, kernel)
  assert y_ours.shape == y_ref.shape
  assert _relative(y_ours, y_ref) < 1e-5
  assert _relative(g_ours[0], g_ref[0]) < 1e-5            # d/dx
  assert _relative(g_ours[1], g_ref[1]) < 1e-5            # d/dkernel


def test_both_transposed_conv_forms_are_tested():
  big = [c for _, c, f in DECONV_SHAPES if c > conv.DECONV_SHIFT_MAX_C and 4 * f > c]
  small = [c for _, c, f in DECONV_SHAPES if c <= conv.DECONV_SHIFT_MAX_C and 4 * f > c]
  assert len(big) >= 3 and len(small) >= 3


@pytest.fixture(autouse=True)
def _exact_matmuls():
  with jax.default_matmul_precision("highest"):
    yield


@pytest.mark.parametrize("shape,c,f", CONV_SHAPES)
def test_conv_equals_flax_conv_with_gradients(shape, c, f):
  x = jax.random.normal(jax.random.key(0), shape + (c,))
  kernel = 0.2 * jax.random.normal(jax.random.key(1), (4, 4, c, f))
  ref = lambda x, k: nn.Conv(f, (4, 4), strides=(2, 2), padding="SAME", use_bias=False).apply(
      {"params": {"kernel": k}}, x)
  _compare(conv.conv4x4_s2, ref, x, kernel)


@pytest.mark.parametrize("shape,c,f", DECONV_SHAPES)
def test_conv_transpose_equals_flax_conv_transpose_with_gradients(shape, c, f):
  x = jax.random.normal(jax.random.key(0), shape + (c,))
  kernel = 0.2 * jax.random.normal(jax.random.key(1), (4, 4, c, f))
  ref = lambda x, k: nn.ConvTranspose(f, (4, 4), strides=(2, 2), padding="SAME",
                                      use_bias=False).apply({"params": {"kernel": k}}, x)
  _compare(conv.conv_transpose4x4_s2, ref, x, kernel)


@pytest.mark.parametrize("transpose", [False, True])
def test_module_has_flax_parameters_and_initialisation(transpose):
  x = jnp.ones((8, 8, 16))
  flax_layer = (nn.ConvTranspose if transpose else nn.Conv)(32, (4, 4), strides=(2, 2),
                                                            padding="SAME")
  ours = networks.Conv4x4(32, transpose=transpose)
  p_ref = flax_layer.init(jax.random.key(3), x)["params"]
  p_ours = ours.init(jax.random.key(3), x)["params"]
  assert jax.tree.map(jnp.shape, p_ours) == jax.tree.map(jnp.shape, p_ref)
  np.testing.assert_array_equal(p_ours["kernel"], p_ref["kernel"])
  np.testing.assert_array_equal(p_ours["bias"], p_ref["bias"])
  p = {"kernel": p_ref["kernel"], "bias": p_ref["bias"] + 0.1}
  np.testing.assert_allclose(ours.apply({"params": p}, x), flax_layer.apply({"params": p}, x),
                             rtol=1e-5, atol=1e-5)


def test_vmapped_weight_gradient_equals_the_batched_one():
  x = jax.random.normal(jax.random.key(0), (4, 16, 16, 32))
  kernel = 0.1 * jax.random.normal(jax.random.key(1), (4, 4, 32, 64))
  for op in (conv.conv4x4_s2, conv.conv_transpose4x4_s2):
    k = kernel if op is conv.conv4x4_s2 else 0.1 * jax.random.normal(jax.random.key(1), (4, 4, 32, 8))
    vm = jax.jit(jax.grad(lambda k: jnp.sum(jnp.sin(jax.vmap(lambda e: op(e, k))(x)))))(k)
    bt = jax.jit(jax.grad(lambda k: jnp.sum(jnp.sin(op(x, k)))))(k)
    assert _relative(vm, bt) < 1e-5
    # Per-example gradients (vmap of grad) are per example, not summed.
    per = jax.jit(jax.vmap(jax.grad(lambda k, e: jnp.sum(jnp.sin(op(e, k)))),
                           in_axes=(None, 0)))(k, x)
    assert per.shape == (4,) + k.shape
    assert _relative(per.sum(0), bt) < 1e-5


def test_channel_mismatch_is_an_error():
  with pytest.raises(ValueError, match="x has 3 channels"):
    conv.conv4x4_s2(jnp.zeros((8, 8, 3)), jnp.zeros((4, 4, 2, 5)))
  with pytest.raises(ValueError, match="x has 3 channels"):
    conv.conv_transpose4x4_s2(jnp.zeros((8, 8, 3)), jnp.zeros((4, 4, 2, 5)))


class _FlaxEncoder(nn.Module):
  """networks.ConvEncoder written with flax's own Conv layers (the reference)."""

  @nn.compact
  def __call__(self, x):
    h = x
    for i, feats in enumerate((32, 32, 64, 64)):
      h = nn.relu(nn.Conv(feats, (4, 4), strides=(2, 2), padding="SAME", name=f"conv_{i}")(h))
    h = nn.relu(nn.Dense(256, name="fc")(h.reshape(h.shape[:-3] + (-1,))))
    return networks.GaussianHead(10, name="head")(h)


class _FlaxDecoder(nn.Module):
  """networks.ConvDecoder written with flax's own ConvTranspose layers."""

  @nn.compact
  def __call__(self, z):
    h = nn.relu(nn.Dense(256, name="fc_0")(z))
    h = nn.relu(nn.Dense(1024, name="fc_1")(h))
    h = h.reshape(h.shape[:-1] + (4, 4, 64))
    for i, feats in enumerate((64, 32, 32)):
      h = nn.relu(nn.ConvTranspose(feats, (4, 4), strides=(2, 2), padding="SAME",
                                   name=f"deconv_{i}")(h))
    return nn.ConvTranspose(1, (4, 4), strides=(2, 2), padding="SAME", name="deconv_3")(h)


# Measured: 1.2e-6 (encoder) and 1.8e-6 (decoder) from flax, as the NHWC
# implementation this replaced (1.4e-6, 1.9e-6). A nonlinear loss such as
# sum(sin(out)) amplifies summation-order differences through the ReLU stack
# to 1e-4 in both implementations, so the cotangent here is linear.
TOL_NETWORK = 1e-5


# The GEMM networks compile for about 25 s each, the XLA network for about
# 7 s: slow tests (every layer shape, with gradients, is checked by the fast
# tests above).
@pytest.mark.slow
@pytest.mark.parametrize("lead,impl", [((3,), "gemm"), ((2, 2), "gemm"), ((), "gemm"),
                                       ((3,), "xla")])
def test_conv_networks_equal_flax_networks_with_gradients(lead, impl):
  """Both conv implementations (the GEMM form, channel-major inside, and
  XLA's own convolutions): the same parameter tree as the flax network, and
  the same outputs and parameter gradients, for any leading axes."""
  x = (jax.random.uniform(jax.random.key(0), lead + (64, 64, 1)) > 0.7).astype(jnp.float32)
  z = jax.random.normal(jax.random.key(1), lead + (10,))
  for ours, ref, inp in ((networks.ConvEncoder(10, conv_impl=impl), _FlaxEncoder(), x),
                         (networks.ConvDecoder((64, 64, 1), conv_impl=impl), _FlaxDecoder(), z)):
    params = ref.init(jax.random.key(2), inp)["params"]
    assert (jax.tree.map(jnp.shape, ours.init(jax.random.key(2), inp)["params"])
            == jax.tree.map(jnp.shape, params))
    params = jax.tree.map(lambda p: p + 0.01, params)      # non-zero biases

    def loss(p, model):
      out = model.apply({"params": p}, inp)
      cots = [jax.random.normal(jax.random.key(i), o.shape) for i, o in enumerate(jax.tree.leaves(out))]
      return sum(jnp.sum(o * c) for o, c in zip(jax.tree.leaves(out), cots)), out

    (_, out_ours), g_ours = jax.jit(jax.value_and_grad(loss, has_aux=True),
                                    static_argnums=1)(params, ours)
    (_, out_ref), g_ref = jax.jit(jax.value_and_grad(loss, has_aux=True),
                                  static_argnums=1)(params, ref)
    for a, b in zip(jax.tree.leaves(out_ours), jax.tree.leaves(out_ref)):
      assert a.shape == b.shape
      assert _relative(a, b) < TOL_NETWORK
    errors = jax.tree.map(_relative, g_ours, g_ref)
    for path, error in jax.tree_util.tree_leaves_with_path(errors):
      assert error < TOL_NETWORK, path


def test_channel_major_round_trip_and_shape_errors():
  x = jax.random.normal(jax.random.key(0), (2, 3, 5, 6, 4))
  cm = conv.to_channel_major(x)
  assert cm.shape == (4, 5, 6, 6)
  np.testing.assert_array_equal(cm[:, :, :, 4], jnp.moveaxis(x[1, 1], -1, 0))
  np.testing.assert_array_equal(conv.from_channel_major(cm, (2, 3)), x)
  with pytest.raises(ValueError, match=r"expected an image batch \[..., H, W, C\], got shape \(8, 3\)"):
    conv.conv4x4_s2(jnp.zeros((8, 3)), jnp.zeros((4, 4, 3, 5)))
  with pytest.raises(ValueError, match=r"expected channel-major x \[C, H, W, N\], got shape \(3, 8, 8\)"):
    conv.conv4x4_s2_cm(jnp.zeros((3, 8, 8)), jnp.zeros((4, 4, 3, 5)))
  with pytest.raises(ValueError, match=r"expected a kernel \[4, 4, C, F\], got shape \(3, 3, 3, 5\)"):
    conv.conv_transpose4x4_s2(jnp.zeros((8, 8, 3)), jnp.zeros((3, 3, 3, 5)))


@pytest.mark.parametrize("op,c,f", [(conv.conv4x4_s2, 8, 16),
                                    pytest.param(conv.conv4x4_s2, 1, 16, marks=pytest.mark.slow),
                                    (conv.conv_transpose4x4_s2, 8, 16),
                                    pytest.param(conv.conv_transpose4x4_s2, 40, 16, marks=pytest.mark.slow),
                                    pytest.param(conv.conv_transpose4x4_s2, 8, 1, marks=pytest.mark.slow)])
def test_gradients_come_back_in_the_input_dtypes(op, c, f):
  """Every path (shift and im2col convs, adjoint and 16-tap transposed convs,
  few-output backward) returns dx in x's dtype and dkernel in the kernel's, also when
  they differ and the output is promoted."""
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, c)).astype(jnp.bfloat16)
  kernel = 0.1 * jax.random.normal(jax.random.key(1), (4, 4, c, f))
  dx, dk = jax.grad(lambda x, k: jnp.sum(op(x, k).astype(jnp.float32)), argnums=(0, 1))(x, kernel)
  assert dx.dtype == jnp.bfloat16 and dk.dtype == jnp.float32
  assert bool(jnp.all(jnp.isfinite(dx.astype(jnp.float32))))


def test_channel_major_module_rejects_an_image_batch():
  with pytest.raises(ValueError, match=r"takes x \[C, H, W, N\].*got shape \(2, 8, 8, 3, 1\)"):
    networks.Conv4x4(4, channel_major=True).init(jax.random.key(0), jnp.zeros((2, 8, 8, 3, 1)))


def test_conv_impl_switch_defaults_to_gemm_on_cpu_only(monkeypatch):
  from vae import model as model_lib
  make = lambda impl: model_lib.make_model(architecture="conv", data_shape=(64, 64, 1),
                                           latent_dim=4, conv_impl=impl)
  assert jax.default_backend() == "cpu"
  assert (make("auto").encoder.conv_impl, make("auto").decoder.conv_impl) == ("gemm", "gemm")
  assert make("xla").decoder.conv_impl == "xla"
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert networks.resolve_conv_impl("auto") == "xla"
  assert networks.resolve_conv_impl("gemm") == "gemm"
  with pytest.raises(ValueError, match="conv_impl must be one of"):
    make("cudnn")


def test_scoring_encodes_with_the_conv_of_the_backend_it_runs_on(monkeypatch):
  from vae import metrics, model as model_lib
  trained_on_gpu = model_lib.make_model(architecture="conv", data_shape=(64, 64, 1),
                                        latent_dim=4, conv_impl="xla")
  assert metrics.forward_model(trained_on_gpu).encoder.conv_impl == "gemm"
  p = model_lib.init_params(jax.random.key(0), trained_on_gpu)
  x = (jax.random.uniform(jax.random.key(1), (8, 64, 64, 1)) > 0.5).astype(jnp.float32)
  np.testing.assert_allclose(metrics.representation_from_params(p, trained_on_gpu)(x),
                             metrics.representation_from_params(p, trained_on_gpu, "xla")(x),
                             rtol=1e-5, atol=1e-5)
  monkeypatch.setattr(jax, "default_backend", lambda: "tpu")
  assert metrics.forward_model(trained_on_gpu).encoder.conv_impl == "xla"

"""Registration, printing and type inference of the qnn operators; NumPy references."""

import numpy as np
import pytest
from tvm import relax

from d2lcc import qnn
from d2lcc.qnn import reference as ref

from qnn_harness import build_module


def _arrays(*specs):
    return [np.zeros(shape, dtype) for shape, dtype in specs]


BUILDERS = {
    "quantize": (lambda x: qnn.quantize(x, 0.5, 3, out_dtype="uint8"),
                 [((2, 3), "float32")], ((2, 3), "uint8")),
    "dequantize": (lambda x: qnn.dequantize(x, 0.5, 3),
                   [((2, 3), "uint8")], ((2, 3), "float32")),
    "requantize": (lambda x: qnn.requantize(x, 0.5, 0, 0.25, 1),
                   [((2, 3), "int32")], ((2, 3), "int8")),
    "conv2d": (
        lambda d, w: qnn.conv2d(d, w, 1, 2, 0.1, 0.2, strides=2, padding=1,
                                dilation=(2, 1), groups=2),
        [((1, 4, 9, 8), "uint8"), ((6, 2, 3, 3), "int8")],
        ((1, 6, 4, 4), "int32"),
    ),
    "dense": (lambda d, w: qnn.dense(d, w, 1, 2, 0.1, 0.2),
              [((5, 7), "uint8"), ((3, 7), "int8")], ((5, 3), "int32")),
    "add": (lambda a, b: qnn.add(a, b, 0.1, 1, 0.2, 2, 0.3, 3),
            [((2, 1, 4), "int8"), ((3, 1), "int8")], ((2, 3, 4), "int8")),
    "mul": (lambda a, b: qnn.mul(a, b, 0.1, 1, 0.2, 2, 0.3, 3),
            [((4,), "uint8"), ((4,), "uint8")], ((4,), "uint8")),
    "concatenate": (
        lambda a, b: qnn.concatenate([a, b], [0.1, 0.2], [1, 2], 0.3, 3, axis=-1),
        [((2, 3), "uint8"), ((2, 5), "uint8")],
        ((2, 8), "uint8"),
    ),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_op_prints_as_itself_and_infers_its_type(name):
    make, specs, (shape, dtype) = BUILDERS[name]
    mod = build_module(make, _arrays(*specs))
    assert f"R.qnn.{name}(" in mod.script()
    ret = mod["main"].ret_ty
    assert [int(d) for d in ret.shape] == list(shape) and str(ret.dtype) == dtype
    assert qnn.ops.get(name).name == f"relax.qnn.{name}"


def test_get_rejects_unknown_operator():
    message = "qnn.ops.get: unknown operator name='softmax'"
    with pytest.raises(ValueError, match=message):
        qnn.ops.get("softmax")


def test_quantize_and_dequantize_accept_parameters_computed_at_run_time(run, rng):
    x = rng.normal(0, 3, (3, 4)).astype("float32")
    s = rng.uniform(0.05, 0.5, 3).astype("float32")

    def make(v, scale):  # the per-channel scale is a function parameter, not a constant
        q = qnn.quantize(v, scale, 7, out_dtype="int8", axis=0)  # nested, not emitted
        return qnn.dequantize(q, scale, 7, axis=0)

    got = run(make, x, s)
    q = ref.quantize(x, s, 7, "int8", axis=0)
    np.testing.assert_array_equal(got, ref.dequantize(q, s, 7, axis=0))


def test_reference_conv2d_matches_direct_loops(rng):
    d = rng.integers(0, 256, (2, 4, 6, 5)).astype("uint8")
    w = rng.integers(-128, 128, (6, 2, 3, 2)).astype("int8")
    zd, zw, groups = 7, np.arange(6) - 3, 2
    (sh, sw), (t, l, b, r), (dh, dw) = (2, 1), (1, 0, 2, 1), (1, 2)
    got = ref.conv2d(d, w, zd, zw, (sh, sw), (t, l, b, r), (dh, dw), groups)
    x = np.pad(d.astype(np.int64) - zd, ((0, 0), (0, 0), (t, b), (l, r)))
    ww = w.astype(np.int64) - zw[:, None, None, None]
    out = np.zeros(got.shape, np.int64)
    for n, o, i, j in np.ndindex(*got.shape):
        g = o // 3
        for c, p, q in np.ndindex(2, 3, 2):
            pixel = x[n, g * 2 + c, i * sh + p * dh, j * sw + q * dw]
            out[n, o, i, j] += pixel * ww[o, c, p, q]
    np.testing.assert_array_equal(got, out)


@pytest.mark.parametrize("op", ["add", "mul"])
def test_reference_add_mul_are_within_one_unit_of_the_real_result(rng, op):
    a, b = (rng.integers(0, 256, 200).astype("uint8") for _ in range(2))
    ps = (np.float32(0.05), 120, np.float32(0.07), 130)
    out_scale = np.float32(0.1 if op == "add" else 0.05)
    got = getattr(ref, op)(a, b, *ps, out_scale, 128)
    combine = np.add if op == "add" else np.multiply
    real = combine(ref.dequantize(a, *ps[:2]), ref.dequantize(b, *ps[2:]))
    exact = np.clip(np.round(real.astype(np.float64) / out_scale) + 128, 0, 255)
    assert np.abs(got - exact).max() <= 1


def test_default_pipeline_lowers_qnn_ops_through_flegalize(rng):
    from qnn_harness import compile_and_run

    d = rng.integers(0, 256, (1, 3, 5, 5)).astype("uint8")
    w = rng.integers(-128, 128, (2, 3, 3, 3)).astype("int8")

    def make(x, k):
        acc = qnn.conv2d(x, k, 3, 0, 0.1, 0.2, padding=1)
        return qnn.requantize(acc, 0.02, 0, 0.5, 4, out_dtype="uint8", axis=1)

    mod = build_module(make, [d, w])  # no Canonicalize: LegalizeOps calls FLegalize
    acc = ref.conv2d(d, w, 3, 0, padding=(1, 1))
    expected = ref.requantize(acc, 0.02, 0, 0.5, 4, "uint8", axis=1)
    np.testing.assert_array_equal(compile_and_run(mod, [d, w]), expected)

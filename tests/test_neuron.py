"""d2lcc.neuron: the NKI interpreter, the cost model, codegen and the pipeline model."""

import numpy as np
import pytest

from d2lcc.neuron import cost, nki, pipeline

HEAD = ("import neuronxcc.nki.language as nl\nimport neuronxcc.nki.isa as nisa\n"
        "import neuronxcc.nki as nki\nimport numpy as np\n"
        "import neuronxcc.nki.compiler as ncc\nSB = ncc.sbuf.mod_alloc\n")


def _src(body, params="A_ptr, B_ptr, C_ptr"):
    lines = [f"def t_kernel({params}):"] + ["  " + s for s in body.splitlines()]
    return HEAD + "\n".join(lines) + "\n"


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


SBUF = ("nl.ndarray(shape=[{p}, {f}], dtype=np.float32, "
        "buffer=ncc.sbuf.mod_alloc(base_addr={a}))")
IJ = "[i[:, None], j[None, :]]"
LOAD2 = """a = {sa}
b = {sb}
c = {sc}
i = nl.arange({p})
j = nl.arange({f})
a[i[:, None], j[None, :]] = nl.load(A_ptr[i[:, None], j[None, :]])
b[i[:, None], j[None, :]] = nl.load(B_ptr[i[:, None], j[None, :]])
"""


def _two_input(p, f, compute):
    body = LOAD2.format(sa=SBUF.format(p=p, f=f, a=0),
                        sb=SBUF.format(p=p, f=f, a=4 * f),
                        sc=SBUF.format(p=p, f=f, a=8 * f), p=p, f=f)
    body += compute + f"\nnl.store(C_ptr{IJ}, c{IJ})"
    return _src(body)


@pytest.mark.parametrize("op,ref", [("add", np.add), ("subtract", np.subtract),
                                    ("multiply", np.multiply), ("maximum", np.maximum),
                                    ("minimum", np.minimum)])
def test_tensor_tensor_matches_numpy(op, ref):
    a, b = _rand(128, 64, seed=1), _rand(128, 64, seed=2)
    src = _two_input(128, 64, "c[i[:, None], j[None, :]] = nisa.tensor_tensor("
                     f"a[i[:, None], j[None, :]], b[i[:, None], j[None, :]], "
                     f"op=nki.language.{op})")
    out = nki.run(src, [a, b], (128, 64))
    np.testing.assert_array_equal(out.output, ref(a, b))
    assert out.calls == {"load": 2, "tensor_tensor": 1, "store": 1}


def test_tensor_scalar_column_operand_and_reverse():
    a, b = _rand(128, 32, seed=3), _rand(128, 32, seed=4)
    src = _two_input(128, 32, "c[i[:, None], j[None, :]] = nisa.tensor_scalar("
                     "data=a[i[:, None], j[None, :]], operand0=b[i, 0], "
                     "op0=nki.language.subtract, reverse0=True, operand1=0.0, "
                     "op1=nki.language.maximum, reverse1=False)")
    out = nki.run(src, [a, b], (128, 32))
    np.testing.assert_array_equal(out.output, np.maximum(b[:, :1] - a, 0))


def test_tensor_copy_activation_and_memset():
    a, b = _rand(64, 16, seed=5), _rand(64, 16, seed=6)
    src = _two_input(64, 16, "c[i[:, None], j[None, :]] = nisa.activation("
                     "op=nki.language.exp, data=a[i[:, None], j[None, :]], "
                     "bias=b[i, 0], scale=2.0)")
    out = nki.run(src, [a, b], (64, 16))
    np.testing.assert_allclose(out.output, np.exp(2 * a + b[:, :1]), rtol=1e-6)
    src = _two_input(64, 16, "b[i[:, None], j[None, :]] = 3.0\n"
                     "c[i[:, None], j[None, :]] = nisa.tensor_copy("
                     "b[i[:, None], j[None, :]])")
    np.testing.assert_array_equal(nki.run(src, [a, b], (64, 16)).output, 3.0)


MATMUL = """s = nl.ndarray(shape=[128, {m}], dtype=np.float32, buffer=SB(base_addr=0))
v = nl.ndarray(shape=[128, {n}], dtype=np.float32, buffer=SB(base_addr={o}))
r = nl.ndarray(shape=[1, nl.par_dim({m}), {n}], dtype=np.float32, buffer=nl.psum)
c = nl.ndarray(shape=[{m}, {n}], dtype=np.float32, buffer=SB(base_addr={o2}))
k = nl.arange(128)
i = nl.arange({m})
j = nl.arange({n})
s[k[:, None], i[None, :]] = nl.load(A_ptr[k[:, None], i[None, :]])
v[k[:, None], j[None, :]] = nl.load(B_ptr[k[:, None], j[None, :]])
r[0, i[:, None], j[None, :]] = 0.0
for t in nl.sequential_range(2):
  r[0, i[:, None], j[None, :]] += nisa.nc_matmul(s[k[:, None], i[None, :]],
                                                  v[k[:, None], j[None, :]])
c[i[:, None], j[None, :]] = nisa.tensor_copy(r[0, i[:, None], j[None, :]])
nl.store(C_ptr[i[:, None], j[None, :]], c[i[:, None], j[None, :]])"""


@pytest.mark.parametrize("m,n", [(128, 512), (64, 96)])
def test_nc_matmul_accumulates_in_psum(m, n):
    a, b = _rand(128, m, seed=7), _rand(128, n, seed=8)
    src = _src(MATMUL.format(m=m, n=n, o=4 * m, o2=4 * (m + n)))
    out = nki.run(src, [a, b], (m, n))
    np.testing.assert_allclose(out.output, 2 * a.T @ b, rtol=1e-5, atol=1e-4)
    assert out.flops == 2 * 2 * 128 * m * n
    assert out.dma_bytes == 4 * (128 * m + 128 * n + m * n)


def test_unsupported_call_is_named():
    src = _two_input(128, 8, "c[i[:, None], j[None, :]] = nisa.affine_select("
                     "a[i[:, None], j[None, :]])")
    with pytest.raises(ValueError, match="nisa.affine_select"):
        nki.run(src, [_rand(128, 8), _rand(128, 8)], (128, 8))
    src = _two_input(128, 8, "c[i[:, None], j[None, :]] = nisa.activation("
                     "op=nki.language.tanh, data=a[i[:, None], j[None, :]])")
    with pytest.raises(ValueError, match="tanh"):
        nki.run(src, [_rand(128, 8), _rand(128, 8)], (128, 8))


def test_sbuf_and_psum_overflow():
    src = _two_input(128, 8, "c[i[:, None], j[None, :]] = nisa.tensor_copy("
                     "a[i[:, None], j[None, :]])")
    ok = nki.run(src, [_rand(128, 8), _rand(128, 8)], (128, 8))
    assert ok.output.shape == (128, 8)
    big = src.replace("base_addr=64", "base_addr=196600")
    with pytest.raises(ValueError, match="SBUF overflow"):
        nki.run(big, [_rand(128, 8), _rand(128, 8)], (128, 8))
    psum = MATMUL.format(m=128, n=512, o=512, o2=2560).replace(
        "shape=[1, nl.par_dim(128), 512]", "shape=[9, nl.par_dim(128), 512]")
    with pytest.raises(ValueError, match="PSUM overflow"):
        nki.run(_src(psum), [_rand(128, 128), _rand(128, 512)], (128, 512))


def test_partition_dimension_checks():
    src = _two_input(256, 8, "c[i[:, None], j[None, :]] = nisa.tensor_copy("
                     "a[i[:, None], j[None, :]])")
    with pytest.raises(ValueError, match="partition dimension 256"):
        nki.run(src, [_rand(256, 8), _rand(256, 8)], (256, 8))
    src = _two_input(128, 8, "c[i[:, None], j[None, :]] = nisa.tensor_copy("
                     "a[i[None, :], j[:, None]])")
    with pytest.raises(ValueError, match="misaligned partition dimension"):
        nki.run(src, [_rand(128, 8), _rand(128, 8)], (128, 8))


def test_bad_arguments():
    with pytest.raises(TypeError, match="inputs"):
        nki.run(_src("pass"), np.zeros(3, "float32"), (1,))
    with pytest.raises(ValueError, match="source"):
        nki.run("def (", [], (1,))
    with pytest.raises(ValueError, match="takes 3 tensors"):
        nki.run(_src("pass"), [_rand(2)], (1,))
    with pytest.raises(ValueError, match="importing 'os'"):
        nki.run("import os\n" + _src("pass"), [_rand(2), _rand(2)], (1,))
    with pytest.raises(ValueError, match="cost.CoreModel: partitions"):
        cost.CoreModel(partitions=0)


def test_cost_model_is_monotonic():
    m = cost.CoreModel()
    sizes = [1, 2, 512, 4096, 1 << 20, 1 << 26]
    assert all(cost.dma_seconds(m, a) < cost.dma_seconds(m, b)
               for a, b in zip(sizes, sizes[1:]))
    cols = [1, 64, 128, 512]
    for dtype in ("float32", "bfloat16"):
        t = [cost.matmul_seconds(m, n, dtype) for n in cols]
        assert t == sorted(t) and len(set(t)) == len(t)
    assert cost.peak_flops(m, "bfloat16") == 4 * cost.peak_flops(m, "float32")
    ridge = cost.peak_flops(m) / m.dma_bandwidth
    assert cost.roofline(m, ridge / 2) == pytest.approx(cost.peak_flops(m) / 2)
    assert cost.roofline(m, 10 * ridge) == cost.peak_flops(m)
    assert cost.roofline(m, float("inf")) == cost.peak_flops(m)


def test_pipeline_partition_and_simulate():
    assert pipeline.balanced_stages([1, 1, 1, 1], 2) == [(0, 2), (2, 4)]
    assert pipeline.partition([5, 1, 1, 1, 1, 1], 2) == [(0, 1), (1, 6)]
    one = pipeline.simulate([4.0], 10)
    two = pipeline.simulate([2.0, 2.0], 10)
    assert one["throughput"] == pytest.approx(10 / 40)
    assert two["throughput"] == pytest.approx(10 / 22)
    assert two["latency_s"] == pytest.approx(4.0)
    slow = pipeline.simulate([2.0, 2.0], 10, link_s=1.0)
    assert slow["latency_s"] == pytest.approx(5.0)
    m = cost.CoreModel()
    streamed = pipeline.layer_seconds(m, 2048, 2048, 16, weights_on_chip=False)
    assert streamed > pipeline.layer_seconds(m, 2048, 2048, 16)
    with pytest.raises(ValueError, match="n_stages"):
        pipeline.partition([1.0, 2.0], 3)
    with pytest.raises(ValueError, match=r"stage_s\[1\]"):
        pipeline.simulate([1.0, float("nan")], 3)


def test_generated_kernels_run_in_the_model():
    """The kernels the book shows, generated by TVM's trn backend, against NumPy."""
    from d2lcc.neuron import codegen

    a, b = _rand(256, 1024, seed=9), _rand(256, 1024, seed=10)
    add = nki.run(codegen.generate(codegen.add_kernel(256, 1024, tile=512)), [a, b],
                  (256, 1024))
    np.testing.assert_array_equal(add.output, a + b)
    at, bm, bias = _rand(256, 256, seed=11), _rand(256, 1024, seed=12), \
        _rand(256, 1, seed=13)
    transfers = []
    for tile_m, tile_n, relu, bufs in [(128, 256, False, 1), (256, 512, True, 2),
                                       (128, 512, False, 2), (256, 512, False, 2)]:
        src = codegen.generate(codegen.matmul_kernel(256, 256, 1024, tile_m=tile_m,
                                                     tile_n=tile_n, bufs=bufs,
                                                     relu=relu))
        run = nki.run(src, [at, bm, bias], (256, 1024))
        ref = at.T @ bm + bias
        np.testing.assert_allclose(run.output, np.maximum(ref, 0) if relu else ref,
                                   rtol=1e-4, atol=1e-4)
        assert run.flops == 2 * 256 * 256 * 1024
        if not relu:
            transfers.append(run.dma_transfers)
    # a larger tile never needs more DMA transfers
    assert transfers == sorted(transfers, reverse=True)
    with pytest.raises(ValueError, match="tile_m=192 must be a multiple"):
        codegen.matmul_kernel(384, 128, 512, tile_m=192)
    with pytest.raises(TypeError, match="func"):
        codegen.generate("kernel")

"""BYOC step 3, second flavour: send the same regions to an existing library.

Many vendors ship a library, not a compiler: cuBLAS, DNNL (oneDNN), the Arm
Compute Library. Their BYOC codegen emits little code: a call into the
library for each matched kernel, with the shapes and attributes as
arguments. :func:`blas_codegen` does this for the same patterns as
:mod:`d2lcc.byoc.c_codegen`: each kernel becomes a C stub (:func:`stub_c`)
that calls the global packed function ``d2lcc.blas.matmul`` or
``d2lcc.blas.conv2d`` by name. Those are our "vendor runtime":
:func:`_blas_matmul` and :func:`_blas_conv2d` compute with NumPy, whose
``matmul`` calls the BLAS it was built with (OpenBLAS in NumPy's wheels).

Because the stubs look the library up by name at run time, a process that
loads an exported library must first register the library functions
(:func:`register_library`), as a TensorRT module needs TensorRT installed.
"""

from __future__ import annotations

import ctypes

import numpy as np

from .c_codegen import PRELUDE, c_source_module, wrapper_c
from .region import read_region

__teaching__ = ("stub_c",)

#: C helpers of the library flavour: pack arguments, call a global function.
CALLS = r"""
static void d2lcc_tensor_arg(TVMFFIAny* a, DLTensor* t) {
  memset(a, 0, sizeof(TVMFFIAny));
  a->type_index = t != NULL ? kTVMFFIDLTensorPtr : kTVMFFINone;
  a->v_ptr = t;
}

static void d2lcc_int_arg(TVMFFIAny* a, int64_t value) {
  memset(a, 0, sizeof(TVMFFIAny));
  a->type_index = kTVMFFIInt;
  a->v_int64 = value;
}

// Call the global packed function `name` (the library) with `n` arguments.
static int d2lcc_call(const char* name, TVMFFIAny* args, int32_t n) {
  TVMFFIByteArray key;
  key.data = name;
  key.size = strlen(name);
  TVMFFIObjectHandle f = NULL;
  if (TVMFFIFunctionGetGlobal(&key, &f) != 0) return -1;
  if (f == NULL) {
    char message[256];
    snprintf(message, sizeof(message), "%s is not registered: call "
             "d2lcc.byoc.register() in this process first", name);
    TVMFFIErrorSetRaisedFromCStr("RuntimeError", message);
    return -1;
  }
  TVMFFIAny result;
  memset(&result, 0, sizeof(result));
  int rc = TVMFFIFunctionCall(f, args, n, &result);
  TVMFFIObjectDecRef(f);
  return rc;
}
"""


def stub_c(name, k):
    """C that hands kernel k to the library: pack the tensors and attributes, call."""
    ints = [int(k.relu)]
    if k.op == "conv2d":
        ints += list(k.strides) + list(k.padding)
    lines = [f"// {k.name}, computed by d2lcc.blas.{k.op}",
             f"static int {name}(DLTensor* x, DLTensor* w, DLTensor* b,",
             "                  DLTensor* y) {",
             f"  TVMFFIAny a[{4 + len(ints)}];"]
    for i, tensor in enumerate(["x", "w", "b", "y"]):
        lines.append(f"  d2lcc_tensor_arg(&a[{i}], {tensor});")
    for i, value in enumerate(ints):
        lines.append(f"  d2lcc_int_arg(&a[{4 + i}], {value});")
    lines.append(f'  return d2lcc_call("d2lcc.blas.{k.op}", a, {4 + len(ints)});')
    return "\n".join(lines) + "\n}\n"


def blas_codegen(functions, options, constant_names):
    """relax.ext.d2lcc_blas: C stubs that call the library, one module for all.

    ``RunCodegen`` passes the regions (``functions``), per-codegen options and
    the names of bound constants; our regions take their weights as arguments,
    so only ``functions`` matters.
    """
    from tvm import relax

    if isinstance(functions, (str, bytes)) or not hasattr(functions, "__iter__"):
        raise TypeError(f"byoc.blas_codegen: functions must be a list of Relax "
                        f"functions, got {type(functions).__name__}")
    for i, func in enumerate(functions):
        if not isinstance(func, relax.Function):
            raise TypeError(f"byoc.blas_codegen: functions[{i}] must be a "
                            f"relax.Function, got {type(func).__name__}")
    code, symbols = [PRELUDE, CALLS], []
    for func in functions:
        region = read_region(func)
        for j, step in enumerate(region.steps):
            code.append(stub_c(f"{region.symbol}_k{j}", step.kernel))
        code.append(wrapper_c(region, lambda expr: expr))
        symbols.append(region.symbol)
    return [c_source_module("".join(code), symbols)]


def _as_numpy(tensor) -> np.ndarray:
    """A NumPy view (no copy) of a float32 tensor a library function receives.

    The stubs pass ``DLTensor*`` views, which TVM hands to Python as tensors
    that do not own their memory (so ``np.from_dlpack`` cannot take them); we
    view their memory at its address instead, as a C library would.
    """
    shape = tuple(int(d) for d in tensor.shape)
    count = int(np.prod(shape, dtype=np.int64))
    memory = (ctypes.c_float * count).from_address(tensor.data_ptr())
    return np.frombuffer(memory, np.float32, count).reshape(shape)


def _blas_matmul(x, w, b, y, relu) -> None:
    """The library's matmul: ``y = relu?(x @ w + b?)``, written into ``y``."""
    out = _as_numpy(y)
    np.matmul(_as_numpy(x), _as_numpy(w), out=out)
    if b is not None:
        out += _as_numpy(b).reshape(1, -1)
    if relu:
        np.maximum(out, 0, out=out)


def _blas_conv2d(x, w, b, y, relu, stride_h, stride_w, top, left, bottom,
                right) -> None:
    """The library's conv2d (NCHW, OIHW) as one matrix product per image (im2col)."""
    xs, ws, out = _as_numpy(x), _as_numpy(w), _as_numpy(y)
    o, c, r, s = ws.shape
    padded = np.pad(xs, ((0, 0), (0, 0), (top, bottom), (left, right)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (r, s), axis=(2, 3))
    windows = windows[:, :, ::stride_h, ::stride_w]  # n, c, oh, ow, r, s
    weights = ws.reshape(o, c * r * s)
    for n in range(xs.shape[0]):
        columns = windows[n].transpose(0, 3, 4, 1, 2).reshape(c * r * s, -1)
        np.matmul(weights, columns, out=out[n].reshape(o, -1))
    if b is not None:
        out += _as_numpy(b).reshape(1, -1, 1, 1)
    if relu:
        np.maximum(out, 0, out=out)


def register_library() -> list[str]:
    """Register the library: ``d2lcc.blas.matmul`` and ``d2lcc.blas.conv2d``."""
    import tvm

    tvm.register_global_func("d2lcc.blas.matmul", _blas_matmul, override=True)
    tvm.register_global_func("d2lcc.blas.conv2d", _blas_conv2d, override=True)
    return ["d2lcc.blas.matmul", "d2lcc.blas.conv2d"]

"""The cost model of one NeuronCore: what each NKI instruction costs, in seconds.

Every number the model uses is a field of :class:`CoreModel`, and every field
says where it comes from: a published figure (AWS Neuron documentation, or the
``aws/trn1`` target tag that TVM 0.27 registers in
``tvm/backend/trn/target_tags.py``) or an *assumption* of this book, chosen to
be plausible and labelled as such. The times this model produces are modelled
times, not measurements of hardware.

Sources (BibTeX keys in the book's ``references.bib``):

* ``AWS.Neuron.NeuronCoreV2``: NeuronCore-v2 architecture page (Tensor Engine
  "over 90 TFLOPS" FP16/BF16; Vector Engine 2.3 TFLOPS FP32; Scalar Engine
  2.9 TFLOPS FP32).
* ``AWS.Neuron.Trainium``: Trainium chip page (two NeuronCore-v2, 190
  FP16/BF16 TFLOPS, 47.5 FP32 TFLOPS, 820 GB/s device memory).
* ``AWS.Neuron.NKIArch``: Trainium/Inferentia2 architecture guide for NKI
  (128 SBUF/PSUM partitions, 24 MiB SBUF, 2 MiB PSUM in 8 banks of 2 KiB per
  partition, matmul tile limits 128 x 128 stationary and 512 moving).
* ``AWS.Neuron.Inferentia``: Inferentia chip page (four NeuronCore-v1, 128 INT8
  TOPS, 64 FP16/BF16 TFLOPS).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import checks

#: Data types the model knows, with their sizes in bytes.
ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2}


def _te_rates() -> dict:
    return {"float32": 0.5, "float16": 2.0, "bfloat16": 2.0}


@dataclass(frozen=True)
class CoreModel:
    """The constants of one modelled NeuronCore-v2 (seconds, bytes)."""

    #: SBUF and PSUM partitions, and tensor-engine rows/columns (AWS.Neuron.NKIArch;
    #: TVM's aws/trn1 tag: partition_size=128).
    partitions: int = 128
    #: SBUF bytes per partition: 192 KiB, 24 MiB in all (TVM's aws/trn1 tag:
    #: max_sbuf_size_per_partition=196608; AWS.Neuron.NKIArch).
    sbuf_bytes: int = 196608
    #: PSUM bytes per partition: 16 KiB, 2 MiB in all (TVM's aws/trn1 tag:
    #: max_psum_size_per_partition=16384; AWS.Neuron.NKIArch).
    psum_bytes: int = 16384
    #: One PSUM bank per partition, the most one matmul may write (AWS.Neuron.NKIArch).
    psum_bank_bytes: int = 2048
    #: Largest free size of the moving matmul operand (AWS.Neuron.NKIArch).
    moving_max: int = 512
    #: Clock of every engine. ASSUMPTION (the model's time unit; not published
    #: per engine in the sources above).
    clock_hz: float = 1.4e9
    #: Moving-operand columns the 128 x 128 systolic array takes per cycle, by
    #: input type. ASSUMPTION, calibrated so that 16-bit peak is near the
    #: published "over 90 TFLOPS" (AWS.Neuron.NeuronCoreV2) and float32 runs at a
    #: quarter of it, as 47.5 FP32 against 190 BF16 TFLOPS on the chip page
    #: (AWS.Neuron.Trainium) suggests.
    te_columns_per_cycle: dict = field(default_factory=_te_rates)
    #: Fixed cycles of one matmul instruction (filling the array). ASSUMPTION.
    te_overhead_cycles: int = 64
    #: Elements per partition per cycle of the vector and scalar engines.
    #: ASSUMPTION (the published TFLOPS figures count operations, not elements).
    vector_elems_per_cycle: float = 1.0
    #: Fixed cycles of one vector/scalar instruction. ASSUMPTION.
    vector_overhead_cycles: int = 64
    #: Device-memory bandwidth one core gets: half of the 820 GB/s a
    #: two-core device has (AWS.Neuron.NKIArch); the equal split is an ASSUMPTION.
    dma_bandwidth: float = 410e9
    #: Time a DMA queue is busy issuing one transfer. ASSUMPTION.
    dma_issue_s: float = 50e-9
    #: Time from the end of a transfer's issue until its data has landed
    #: (the queue is free meanwhile, so transfers overlap). ASSUMPTION.
    dma_latency_s: float = 2e-6

    def __post_init__(self):
        func = "cost.CoreModel"
        for name in ("partitions", "sbuf_bytes", "psum_bytes", "psum_bank_bytes",
                     "moving_max", "te_overhead_cycles", "vector_overhead_cycles"):
            checks.positive_int(func, name, getattr(self, name), maximum=1 << 30)
        for name in ("clock_hz", "vector_elems_per_cycle", "dma_bandwidth"):
            checks.real(func, name, getattr(self, name), positive=True, maximum=1e18)
        for name in ("dma_issue_s", "dma_latency_s"):
            checks.real(func, name, getattr(self, name), minimum=0.0, maximum=1.0)
        rates = self.te_columns_per_cycle
        if not isinstance(rates, dict):
            raise TypeError(f"{func}: te_columns_per_cycle must be a dict of "
                            f"dtype -> columns per cycle, got {type(rates).__name__}")
        for dtype in ITEMSIZE:
            if dtype not in rates:
                raise ValueError(f"{func}: te_columns_per_cycle has no {dtype!r}")
            checks.real(func, f"te_columns_per_cycle[{dtype!r}]", rates[dtype],
                        positive=True, maximum=1e6)


def matmul_seconds(model: CoreModel, n_moving: int, dtype: str = "float32") -> float:
    """Tensor-engine time of one ``nc_matmul`` with ``n_moving`` moving columns.

    The stationary operand (at most 128 x 128) is loaded into the array, then
    the moving columns stream through it: fixed cycles plus columns divided by
    the array's rate for ``dtype``.
    """
    func = "cost.matmul_seconds"
    _check_model(func, model)
    n_moving = checks.positive_int(func, "n_moving", n_moving, maximum=1 << 30)
    checks.one_of(func, "dtype", dtype, list(ITEMSIZE))
    rate = model.te_columns_per_cycle[dtype]
    return (model.te_overhead_cycles + n_moving / rate) / model.clock_hz


def vector_seconds(model: CoreModel, free_elems: int) -> float:
    """Vector/scalar-engine time of one instruction on ``free_elems`` a partition."""
    _check_model("cost.vector_seconds", model)
    checks.positive_int("cost.vector_seconds", "free_elems", free_elems,
                        maximum=1 << 30)
    return (model.vector_overhead_cycles
            + free_elems / model.vector_elems_per_cycle) / model.clock_hz


def dma_seconds(model: CoreModel, nbytes: int) -> float:
    """Time a DMA queue is busy with one transfer of ``nbytes`` (without latency)."""
    _check_model("cost.dma_seconds", model)
    checks.positive_int("cost.dma_seconds", "nbytes", nbytes, maximum=1 << 50)
    return model.dma_issue_s + nbytes / model.dma_bandwidth


def peak_flops(model: CoreModel, dtype: str = "float32") -> float:
    """The model's tensor-engine peak in FLOP/s for ``dtype`` inputs (2 FLOP a MAC)."""
    _check_model("cost.peak_flops", model)
    checks.one_of("cost.peak_flops", "dtype", dtype, list(model.te_columns_per_cycle))
    rate = model.te_columns_per_cycle[dtype]
    return 2.0 * model.partitions * model.partitions * rate * model.clock_hz


def roofline(model: CoreModel, intensity: float, dtype: str = "float32") -> float:
    """Attainable FLOP/s at ``intensity`` FLOP a DMA byte: min(peak, intensity x BW)."""
    _check_model("cost.roofline", model)
    intensity = checks.real("cost.roofline", "intensity", intensity, minimum=0.0,
                            allow_inf=True)
    return min(peak_flops(model, dtype), intensity * model.dma_bandwidth)


def _check_model(func: str, model) -> None:
    if not isinstance(model, CoreModel):
        raise TypeError(f"{func}: model must be a cost.CoreModel, got "
                        f"{type(model).__name__}")


#: Published peaks the book compares the model with (FLOP/s or OP/s, per
#: NeuronCore unless the name says chip). Keys name the source.
PUBLISHED = {
    "NeuronCore-v2 tensor engine, FP16/BF16 (AWS.Neuron.NeuronCoreV2)": 90e12,
    "Trainium chip / 2 cores, FP16/BF16 (AWS.Neuron.Trainium)": 190e12 / 2,
    "Trainium chip / 2 cores, FP32 (AWS.Neuron.Trainium)": 47.5e12 / 2,
    "Inferentia chip / 4 cores, FP16/BF16 (AWS.Neuron.Inferentia)": 64e12 / 4,
    "Inferentia chip / 4 cores, INT8 (AWS.Neuron.Inferentia)": 128e12 / 4,
}

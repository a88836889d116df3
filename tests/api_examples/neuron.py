"""Valid example arguments for d2lcc.neuron (see tests/api_examples/README.md)."""


def _model():
    from d2lcc.neuron import cost

    return cost.CoreModel()


def _add_source():
    from d2lcc.neuron import codegen

    return codegen.generate(codegen.add_kernel(128, 64, tile=64))


def _inputs():
    import numpy as np

    return [np.ones((128, 64), "float32"), np.ones((128, 64), "float32")]


def _run():
    import numpy as np

    from d2lcc.neuron import nki

    return nki.run(_add_source(), _inputs(), (128, 64))


EXAMPLES = {
    "d2lcc.neuron.cost.matmul_seconds": lambda: dict(model=_model(), n_moving=512),
    "d2lcc.neuron.cost.vector_seconds": lambda: dict(model=_model(), free_elems=512),
    "d2lcc.neuron.cost.dma_seconds": lambda: dict(model=_model(), nbytes=4096),
    "d2lcc.neuron.cost.peak_flops": lambda: dict(model=_model()),
    "d2lcc.neuron.cost.roofline": lambda: dict(model=_model(), intensity=10.0),
    "d2lcc.neuron.codegen.matmul_kernel": lambda: dict(m=128, k=128, n=512),
    "d2lcc.neuron.codegen.add_kernel": lambda: dict(rows=128, cols=512),
    "d2lcc.neuron.codegen.generate": lambda: dict(
        func=__import__("d2lcc.neuron.codegen", fromlist=["x"]).add_kernel(128, 64,
                                                                           tile=64)),
    "d2lcc.neuron.nki.run": lambda: dict(source=_add_source(), inputs=_inputs(),
                                         out_shape=(128, 64)),
    "d2lcc.neuron.nki.KernelRun": lambda: dict(output=_run().output, time_s=1e-6),
    "d2lcc.neuron.pipeline.partition": lambda: dict(times=[1.0, 2.0, 3.0], n_stages=2),
    "d2lcc.neuron.pipeline.layer_seconds": lambda: dict(model=_model(), n_in=256,
                                                        n_out=256, batch=16),
    "d2lcc.neuron.pipeline.simulate": lambda: dict(stage_s=[1e-6, 2e-6], n_inputs=4),
}

#: KernelRun.utilization is a method; the walk covers module-level names only.
ACCEPTS_ANY = {}

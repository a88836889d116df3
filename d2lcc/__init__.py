"""d2lcc: the companion package of *Dive into Deep Learning Compiler*.

The book's notebooks import what they share from here, so that each helper is
written, documented and tested once. One module per idea, in book order:

- :mod:`d2lcc.machine`: what machine and which TVM a notebook runs on
  (:func:`d2lcc.env` prints it at the top of every performance section).
- :mod:`d2lcc.target`: TVM targets for this machine and for the book's others.
- :mod:`d2lcc.checks`: the argument checks every public function shares.
- :mod:`d2lcc.execute`: compile a Relax module or PrimFunc and run it on NumPy arrays.
- :mod:`d2lcc.ir`: build and inspect small Relax modules (one-op modules, op lists).
- :mod:`d2lcc.bench`: timing a function beside its baseline.
- :mod:`d2lcc.plot`: the book's plotting helpers.
- :mod:`d2lcc.models`: the small CNN several chapters compile, with its NumPy reference.
- :mod:`d2lcc.deploy`: reading ELF headers of compiled artifacts.
- :mod:`d2lcc.cpu`: peak FLOP rate, memory bandwidth and the roofline.
- :mod:`d2lcc.matmul`, :mod:`d2lcc.conv`, :mod:`d2lcc.layers`: operator schedules,
  step by step.
- :mod:`d2lcc.tuning`: MetaSchedule tuning and the shipped tuning databases.
- :mod:`d2lcc.compiler`: :func:`d2lcc.compile`, a whole network compiled for the CPU,
  and a per-kernel profile of where its time goes.
- :mod:`d2lcc.qnn`: the QNN dialect on Relax, its lowering and QNN-level passes.
- :mod:`d2lcc.passes`: passes and instruments from the pass chapter.
- :mod:`d2lcc.int8`: int8 kernels on the CPU's dot-product instructions (x86, Arm).
- :mod:`d2lcc.artifacts`: one model compiled for many targets, and what each
  artifact needs to run.
- :mod:`d2lcc.byoc`: Bring Your Own Codegen: patterns, partitioning, a C codegen
  and a BLAS library dispatch.

Submodules load on first use (``d2lcc.bench`` imports :mod:`d2lcc.bench`), so
``import d2lcc`` is fast and imports neither TVM nor matplotlib.
"""

import importlib

__version__ = "0.1.0"


def env():
    """Describe this machine and its TVM install (see :func:`d2lcc.machine.env`)."""
    from .machine import env as _env

    return _env()


def compile(model, target=None, *, schedules="book", database=None,  # noqa: A001
            tune_trials=0, work_dir=None):
    """Compile a whole network for the CPU (see :func:`d2lcc.compiler.compile`)."""
    from .compiler import compile as _compile

    return _compile(model, target, schedules=schedules, database=database,
                    tune_trials=tune_trials, work_dir=work_dir)


def __getattr__(name):
    # Lazy submodules: d2lcc.bench, d2lcc.qnn, ... are imported on first access.
    if name.startswith("_"):
        raise AttributeError(name)
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{name}":
            raise
        raise AttributeError(f"module 'd2lcc' has no attribute {name!r}") from None

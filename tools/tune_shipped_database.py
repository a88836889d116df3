"""Tune the matmul that d2lcc ships a MetaSchedule database for (run offline: many minutes).

Usage, from the repository root::

    .venv/bin/python tools/tune_shipped_database.py ISA [trials] [work_dir]

``ISA`` is a key of ``d2lcc.tuning.SHIPPED_TARGETS`` (``avx2`` or ``avx512``).
Tunes ``d2lcc.tuning.matmul_workload(SHIPPED_SIZE)`` for that target (run it
on a CPU that has the ISA) and writes the four best records to
``d2lcc/data/matmul512_<ISA>/``, replacing what is there. The work directory keeps
every record and the logs.
"""

import sys
import tempfile
import time

from d2lcc import tuning

isa = sys.argv[1]
trials = int(sys.argv[2]) if len(sys.argv) > 2 else 320
work_dir = sys.argv[3] if len(sys.argv) > 3 else tempfile.mkdtemp(prefix="d2lcc_tune_")
mod = tuning.matmul_workload(tuning.SHIPPED_SIZE)
start = time.time()
db = tuning.tune(mod, tuning.SHIPPED_TARGETS[isa], work_dir, trials, trials_per_iter=64)
best = tuning.best_record(db, mod)
gflops = 2 * tuning.SHIPPED_SIZE**3 / tuning.record_seconds(best) / 1e9
print(f"tuned {trials} trials in {time.time() - start:.0f} s; best {gflops:.1f} GFLOPS (tuner's timing); "
      f"work_dir={work_dir}")
tuning.save_top(db, mod, tuning.shipped_database_path(isa), top_k=4)
print("wrote", tuning.shipped_database_path(isa))

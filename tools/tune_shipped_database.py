"""Tune the matmul that d2lcc ships a MetaSchedule database for (run offline: many minutes).

Usage, from the repository root::

    .venv/bin/python tools/tune_shipped_database.py [trials] [work_dir]

Tunes ``d2lcc.tuning.matmul_workload(SHIPPED_SIZE)`` for ``SHIPPED_TARGET``
(a generic AVX2 + FMA x86-64 CPU) and writes its four best records to
``d2lcc/data/matmul512/``, replacing what is there. The work directory keeps
every record and the logs.
"""

import sys
import tempfile
import time

from d2lcc import tuning

trials = int(sys.argv[1]) if len(sys.argv) > 1 else 256
work_dir = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="d2lcc_tune_")
mod = tuning.matmul_workload(tuning.SHIPPED_SIZE)
start = time.time()
db = tuning.tune(mod, tuning.SHIPPED_TARGET, work_dir, trials, trials_per_iter=64)
best = tuning.best_record(db, mod)
gflops = 2 * tuning.SHIPPED_SIZE**3 / tuning.record_seconds(best) / 1e9
print(f"tuned {trials} trials in {time.time() - start:.0f} s; best {gflops:.1f} GFLOPS (tuner's timing); "
      f"work_dir={work_dir}")
tuning.save_top(db, mod, tuning.shipped_database_path(), top_k=4)
print("wrote", tuning.shipped_database_path())

"""Tune the matmul that d2lcc ships a MetaSchedule database for (run offline, minutes).

Usage: python tools/tune_shipped_database.py [trials]

Writes the best records to d2lcc/data/matmul512/ (see d2lcc.tuning).
"""

import sys
import tempfile
import time

import tvm
from tvm.s_tir import meta_schedule as ms

from d2lcc import tuning

trials = int(sys.argv[1]) if len(sys.argv) > 1 else 256
work_dir = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="d2lcc_tune_")
mod = tuning.matmul_workload(tuning.SHIPPED_SIZE)
target = tvm.target.Target(tuning.SHIPPED_TARGET)
start = time.time()
db = ms.tune_tir(mod=mod, target=target, work_dir=work_dir, max_trials_global=trials,
                 num_trials_per_iter=64, seed=0)
print(f"tuned {trials} trials in {time.time() - start:.0f} s; work_dir={work_dir}")

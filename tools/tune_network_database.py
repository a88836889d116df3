"""Tune the book's small CNN with MetaSchedule and keep the database in d2lcc/data.

Run on a quiet machine: ``.venv/bin/python tools/tune_network_database.py``. The
database (``d2lcc/data/small_cnn_<isa>``) is what ``d2lcc.compile(...,
database=...)`` applies in :numref:`sec_networks_tuning`; lookups ignore the
target, so tune once per ISA level on a machine of that level.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

import d2lcc
from d2lcc import models, tuning


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=64)
    args = parser.parse_args()
    isa = tuning.shipped_isa()
    folder = Path(d2lcc.__file__).parent / "data" / f"small_cnn_{isa}"
    work = Path(f"/tmp/d2lcc_tune_small_cnn_{isa}")
    shutil.rmtree(work, ignore_errors=True)
    weights = models.small_cnn_weights(seed=0)
    model = models.small_cnn_onnx(weights)
    start = time.perf_counter()
    net = d2lcc.compile(model, schedules="dlight", tune_trials=args.trials, work_dir=work)
    print(f"tuned {args.trials} trials in {time.perf_counter() - start:.0f} s")
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(net(x), models.small_cnn_numpy(x, weights), rtol=1e-4,
                               atol=1e-5)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("database_workload.json", "database_tuning_record.json"):
        shutil.copy(work / name, folder / name)
    print("database:", folder, [p.stat().st_size for p in folder.iterdir()])


if __name__ == "__main__":
    main()

"""Run every benchmark, one after the other, and print one table (markdown) of all their rows.

    .venv/bin/python benchmarks/run_all.py            # default sizes (about 15-20 minutes on 2 cores)
    .venv/bin/python benchmarks/run_all.py --quick    # smaller sizes, fewer runs (a few minutes)
    .venv/bin/python benchmarks/run_all.py --only big_progressive,s3_upload

Each benchmark runs in its own process (its own peak RSS, its own engine); their output streams through.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Row, print_table

HERE = Path(__file__).resolve().parent
ORDER = ["big_progressive", "big_dash", "many_small", "scheduler", "wide", "s3_upload", "scaleout", "width",
         "storage_upload", "ops_overhead"]  # fmt: skip
QUICK_RUNS = {"big_progressive": 3, "big_dash": 3, "many_small": 2, "scheduler": 2, "wide": 1, "s3_upload": 3,
              "scaleout": 1, "width": 1, "storage_upload": 3, "ops_overhead": 3}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer runs")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(ORDER)}")
    parser.add_argument("--json", help="also write every row to this file")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else ORDER
    rows: list[Row] = []
    notes: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tornado-bench-") as tmp:
        for name in names:
            out = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(HERE / f"bench_{name}.py"), "--json", str(out)]
            if args.quick:
                cmd += ["--quick", "--runs", str(QUICK_RUNS[name])]
            print(f"\n=== {name}: {' '.join(cmd[1:])}", flush=True)
            began = time.monotonic()
            proc = subprocess.run(cmd, check=False)
            print(f"=== {name}: {time.monotonic() - began:.0f} s, exit {proc.returncode}", flush=True)
            if proc.returncode != 0 or not out.exists():
                rows.append(
                    Row(name.replace("_", "-"), "benchmark", "crashed", "", False, f"exit {proc.returncode}")
                )
                continue
            data = json.loads(out.read_text())
            rows += [Row(**r) for r in data["rows"]]
            notes += [f"{name}: {n}" for n in data["notes"]]
    print(f"\nAll benchmarks: {time.monotonic() - started:.0f} s")
    print_table(rows)
    for note in notes:
        print(f"- {note}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": [r.__dict__ for r in rows], "notes": notes}, indent=1))
    sys.exit(0 if all(r.met is not False for r in rows) else 1)


if __name__ == "__main__":
    main()

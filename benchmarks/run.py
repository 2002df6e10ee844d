"""Run every benchmark script in this folder: ``python benchmarks/run.py [--quick] [--json DIR]``.

Each script runs in its own process (so one peer's import side effects do not
touch another's figures). With ``--json DIR`` each writes ``DIR/<name>.json``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scripts() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if not p.name.startswith("_") and p.name != "run.py")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="DIR", default=None)
    parser.add_argument("only", nargs="*", help="script names to run (default: all)")
    args = parser.parse_args(argv)
    failed = []
    for script in scripts():
        if args.only and script.stem not in args.only:
            continue
        cmd = [sys.executable, str(script)]
        if args.quick:
            cmd.append("--quick")
        if args.json:
            Path(args.json).mkdir(parents=True, exist_ok=True)
            cmd += ["--json", str(Path(args.json) / f"{script.stem}.json")]
        print(f"==> {script.name}", flush=True)
        if subprocess.run(cmd, check=False).returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Put the real-world cache traces of the hit-ratio benchmark in benchmarks/traces/.

The traces are not in this repository: Caffeine's simulator ships them, so
this copies them out of a local clone of the Caffeine repository
(``ben-manes/caffeine``; a bare clone or a mirror works, the files are read
with ``git show``)::

    python benchmarks/_fetch_traces.py --caffeine ~/src/caffeine

Licences: the cache2k traces (web07, web12, orm-busy) are © headissue GmbH,
Jens Wilke, under CC BY 4.0 (the clone's ``.../parser/cache2k/LICENSE.txt``,
copied alongside); the LIRS traces (sprite, multi2) come from the LIRS
authors with no licence stated, which is why none of them is committed here.
``benchmarks/cache.py`` uses whichever it finds and names the missing ones.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _traces import REAL, TRACE_DIR

PARSER = "simulator/src/main/resources/com/github/benmanes/caffeine/cache/simulator/parser"
#: trace file -> its folder in Caffeine's simulator
FOLDERS = {"web07": "cache2k", "web12": "cache2k", "orm-busy": "cache2k"}


def _git_show(repo: Path, path: str) -> bytes:
    out = subprocess.run(
        ["git", "-C", str(repo), "show", f"HEAD:{path}"],
        check=True,
        capture_output=True,
    )
    return out.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--caffeine", type=Path, required=True, help="a clone of Caffeine")
    parser.add_argument("--into", type=Path, default=TRACE_DIR, help="default benchmarks/traces")
    args = parser.parse_args(argv)
    args.into.mkdir(parents=True, exist_ok=True)
    wanted = [filename for _, filename, *_ in REAL]
    wanted.append("LICENSE.txt")
    for filename in wanted:
        stem = filename.split(".")[0]
        folder = FOLDERS.get(stem, "cache2k" if filename == "LICENSE.txt" else "lirs")
        target = args.into / (f"cache2k-{filename}" if filename == "LICENSE.txt" else filename)
        try:
            data = _git_show(args.caffeine, f"{PARSER}/{folder}/{filename}")
        except subprocess.CalledProcessError as exc:
            print(f"{filename}: not found ({exc.stderr.decode().strip()})", file=sys.stderr)
            continue
        target.write_bytes(data)
        print(f"{target} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

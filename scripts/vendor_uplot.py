"""Refresh the vendored uPlot in src/sentia_core/monitor/static/ from the npm registry.

    python scripts/vendor_uplot.py            # the version pinned in VENDORED.json
    python scripts/vendor_uplot.py 1.6.33     # another version (then re-run the browser test)

Uses the ordinary npm client (``npm pack``), checks the tarball against the
registry's integrity hash, and copies ``dist/uPlot.iife.min.js``,
``dist/uPlot.min.css`` and ``LICENSE`` next to the dashboard's own files. The
name, version, tarball URL, integrity and the files' SHA-256 go to
``static/VENDORED.json`` (tests/monitor/test_dashboard.py checks them).
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

STATIC = Path(__file__).resolve().parents[1] / "src" / "sentia_core" / "monitor" / "static"
RECORD = STATIC / "VENDORED.json"
FILES = {
    "package/dist/uPlot.iife.min.js": "uPlot.iife.min.js",
    "package/dist/uPlot.min.css": "uPlot.min.css",
    "package/LICENSE": "uPlot.LICENSE",
}


def main(argv: list[str]) -> int:
    if argv:
        version = argv[0]
    else:
        version = json.loads(RECORD.read_text())["uplot"]["version"]
    spec = f"uplot@{version}"
    meta = json.loads(
        subprocess.run(
            ["npm", "view", spec, "--json", "version", "license", "dist"],
            check=True, capture_output=True, text=True,
        ).stdout
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        packed = subprocess.run(
            ["npm", "pack", spec, "--json"], cwd=tmp, check=True, capture_output=True, text=True
        )
        tarball = Path(tmp) / json.loads(packed.stdout)[0]["filename"]
        algo, _, expected = meta["dist"]["integrity"].partition("-")
        digest = base64.b64encode(hashlib.new(algo, tarball.read_bytes()).digest()).decode()
        if digest != expected:
            print(f"integrity mismatch for {tarball.name}", file=sys.stderr)
            return 1
        hashes = {}
        with tarfile.open(tarball) as tar:
            for member, target in FILES.items():
                extracted = tar.extractfile(member)
                if extracted is None:
                    print(f"{member} missing from {tarball.name}", file=sys.stderr)
                    return 1
                data = extracted.read()
                (STATIC / target).write_bytes(data)
                hashes[target] = hashlib.sha256(data).hexdigest()
    RECORD.write_text(
        json.dumps(
            {
                "uplot": {
                    "name": "uplot",
                    "version": meta["version"],
                    "license": meta["license"],
                    "homepage": "https://github.com/leeoniya/uPlot",
                    "tarball": meta["dist"]["tarball"],
                    "integrity": meta["dist"]["integrity"],
                    "files": hashes,
                    "refreshed_by": "scripts/vendor_uplot.py",
                }
            },
            indent=2,
        )
        + "\n"
    )
    print(f"vendored uplot {meta['version']} into {STATIC}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

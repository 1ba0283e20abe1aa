"""Validate the dynamical engine against EMsoft's Ni master pattern (kikuchipy's reference).

Runs ebsdlake's dynamical engine on the structure, settings (Bethe 4/8/50, dmin 0.05 nm,
npx 200, 20 keV) and Monte Carlo stored in kikuchipy's EMsoft Ni file, and prints and writes
the Pearson r against EMsoft's master (target >= 0.999). The full grid (stride 1) takes about
16 s on two CPU cores (r = 0.99965); ``--device cuda`` checks the CUDA path:

    .venv/bin/python scripts/validate_emsoft_ni.py --device cpu --out ni_validation.json

The file is ``--file``, else ``$EBSDLAKE_NI_MASTER``, else the copy kikuchipy ships (where
kikuchipy is not installed, as on the GPU machine, the session kit carries the file).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from simulate.validation import compare_with_emsoft, emsoft_ni_master_file

TARGET_R = 0.999


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--file",
        type=Path,
        default=None,
        help="EMsoft master file (default: $EBSDLAKE_NI_MASTER, else kikuchipy's Ni file)",
    )
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda")
    parser.add_argument("--stride", type=int, default=1, help="compare every N-th pixel")
    parser.add_argument("--precision", default="double", choices=("double", "single"))
    parser.add_argument("--out", type=Path, default=Path("emsoft_ni_validation.json"))
    args = parser.parse_args(argv)
    result = compare_with_emsoft(
        args.file or emsoft_ni_master_file(), args.stride, args.device, args.precision
    )
    result["target_r"] = TARGET_R
    result["passed"] = result["pearson_r"] >= TARGET_R
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

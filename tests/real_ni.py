"""kikuchipy's real Ni scan in its three bundled formats (the same nine raw patterns; h5ebsd
and NORDIF carry a static background, EDAX does not), for the shipped models' tests."""

from __future__ import annotations

from pathlib import Path

import kikuchipy

KIKUCHIPY_DATA = Path(kikuchipy.__file__).parent / "data"
NI_FILES = {
    "h5ebsd": KIKUCHIPY_DATA / "kikuchipy_h5ebsd" / "patterns.h5",
    "NORDIF": KIKUCHIPY_DATA / "nordif" / "Pattern.dat",
    "EDAX": KIKUCHIPY_DATA / "edax_h5ebsd" / "patterns.h5",
}

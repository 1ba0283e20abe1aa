"""Real EBSD scans that ship inside an installed package, for checks on real patterns.

kikuchipy bundles one real Ni scan (3x3 patterns of 60x60 px, two grains) in three formats:
h5ebsd and NORDIF carry a static background, h5ebsd a pattern centre, EDAX neither. The same
nine raw patterns read three ways are how ebsdlake checks that predict uses what a file carries;
nothing is downloaded.
"""

from __future__ import annotations

from pathlib import Path

KIKUCHIPY_NI_FORMATS: dict[str, str] = {
    "h5ebsd": "kikuchipy_h5ebsd/patterns.h5",
    "NORDIF": "nordif/Pattern.dat",
    "EDAX": "edax_h5ebsd/patterns.h5",
}
"""Format name -> path of the Ni scan under kikuchipy's ``data`` folder."""


def kikuchipy_data() -> Path:
    """kikuchipy's bundled ``data`` folder (the package is a dependency)."""
    import kikuchipy

    return Path(kikuchipy.__file__).parent / "data"


def kikuchipy_ni_files() -> dict[str, Path]:
    """The real Ni scan in each format, by format name (h5ebsd, NORDIF, EDAX)."""
    data = kikuchipy_data()
    return {name: data / relative for name, relative in KIKUCHIPY_NI_FORMATS.items()}

"""Bundled non-cubic real phases (hexagonal Mg, tetragonal rutile TiO2) as CIF files.

They are outside the cubic classes a model is trained on: ``model build`` simulates them to
measure how often a model withholds its call ("uncertain") on a phase it has no class for.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

_FOLDER = "noncubic"


def noncubic_names() -> list[str]:
    """Names of the bundled non-cubic phases (file stems: ``Mg``, ``TiO2``)."""
    folder = resources.files("ingest.data").joinpath(_FOLDER)
    return sorted(
        Path(entry.name).stem for entry in folder.iterdir() if entry.name.endswith(".cif")
    )


def noncubic_cif(name: str) -> Path:
    """Path of one bundled non-cubic CIF; an unknown name is a one-line error listing them."""
    if name not in noncubic_names():
        raise ValueError(
            f"non-cubic phase {name!r}: not bundled; known: {', '.join(noncubic_names())}"
        )
    return Path(str(resources.files("ingest.data").joinpath(_FOLDER, f"{name}.cif")))

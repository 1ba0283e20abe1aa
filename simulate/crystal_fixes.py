"""Work-arounds for de-ebsd behaviour the adapter has to correct, each with its reason.

de-ebsd 0.2.1 reads a crystal's lattice centring from the first letter of diffpy's short
space-group name. diffpy names the seven rhombohedral groups on hexagonal axes ``H3``, ``H-3``,
``H32``, ``H3m``, ``H3c``, ``H-3m``, ``H-3c``, so ``Crystal.allowed_by_centering`` raises
"Unknown centering symbol 'H'" and no master of a rhombohedral crystal (calcite, corundum,
Bi2Te3, any synthetic R crystal) could be made. The cell is the obverse hexagonal one, whose
reflection condition is -h + k + l = 3n, which de-ebsd implements under the letter ``R``.
Minimal reproduction: ``de_ebsd.Crystal(0.5, 0.5, 1.2, 90, 90, 120, space_group=166,
sites=[de_ebsd.AtomSite("Bi", (0, 0, 0))]).allowed_by_centering([[1, 0, 1]])``.
"""

from __future__ import annotations

import de_ebsd

#: First letters of diffpy's short names that mean the rhombohedral (obverse hexagonal) cell.
RHOMBOHEDRAL_LETTERS = ("H",)


class Crystal(de_ebsd.Crystal):
    """de-ebsd's crystal with the centring letter of a rhombohedral group read as ``R``."""

    @property
    def centering(self) -> str:
        """Lattice centring letter (``P I F A B C R``)."""
        letter = super().centering
        return "R" if letter in RHOMBOHEDRAL_LETTERS else letter

"""A de-ebsd ``Crystal`` built from a stored structure, in the setting ingest stored it in.

``simulate`` may use this helper or build the crystal itself from the same attributes; either way
the origin choice must be passed explicitly (``Crystal.from_parameters`` always uses origin 2).
"""

from __future__ import annotations

from typing import Any


def engine_crystal(attrs: dict[str, Any]):
    """de-ebsd ``Crystal`` (lattice in nm, asymmetric unit with per-site B in nm^2).

    Parameters
    ----------
    attrs
        Structure attributes as ``Lake.structure(material_id)`` returns them.
    """
    from de_ebsd.crystal import AtomSite, Crystal

    lattice = attrs["lattice_nm"]
    origin = attrs["setting"].get("origin_choice") or 2
    sites = [
        AtomSite(
            element=site["element"],
            position=tuple(float(x) for x in site["xyz"]),
            occupancy=float(site["occupancy"]),
            debye_waller=float(site["B_nm2"]),
        )
        for site in attrs["sites"]
    ]
    return Crystal(
        a=lattice["a"],
        b=lattice["b"],
        c=lattice["c"],
        alpha=lattice["alpha"],
        beta=lattice["beta"],
        gamma=lattice["gamma"],
        space_group=int(attrs["spacegroup_number"]),
        sites=sites,
        origin=int(origin),
    )

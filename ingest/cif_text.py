"""CIF text of a standardised structure, with the space-group setting written out explicitly.

The CIF carries the Hall symbol, the ITA coordinate-system code (origin choice ``1``/``2`` for
the two-origin groups, ``H`` for rhombohedral groups on hexagonal axes), the full list of
symmetry operations of the setting, and the asymmetric unit with Wyckoff letters and isotropic
displacement ``U_iso`` (Angstrom^2, ``U = B / (8 pi^2)``), so that pymatgen, diffpy (and hence
de-ebsd) and EMsoft's CIF import read the same crystal.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import spglib

from ingest.standardize import StandardCell

_AXES = ("x", "y", "z")


def _fraction(value: float) -> str:
    """A translation component as a short fraction (``"1/4"``), empty for zero."""
    frac = Fraction(float(value) % 1.0).limit_denominator(48)
    if frac == 0:
        return ""
    return f"+{frac.numerator}/{frac.denominator}"


def symop_xyz(rotation: np.ndarray, translation: np.ndarray) -> str:
    """One symmetry operation as a CIF ``x,y,z`` string, e.g. ``"-y+1/4,x+3/4,z"``."""
    rows = []
    for r_row, t in zip(np.asarray(rotation, dtype=int), translation, strict=True):
        terms = ""
        for coeff, axis in zip(r_row, _AXES, strict=True):
            if coeff == 1:
                terms += f"+{axis}"
            elif coeff == -1:
                terms += f"-{axis}"
            elif coeff != 0:
                terms += f"{coeff:+d}*{axis}"
        rows.append((terms + _fraction(t)).lstrip("+"))
    return ",".join(rows)


def _coordinate_code(cell: StandardCell) -> str | None:
    setting = cell.setting()
    if setting["origin_choice"] is not None:
        return str(setting["origin_choice"])
    if setting["axes"] == "hexagonal":
        return "H"
    return None


def standard_cif(material_id: str, cell: StandardCell) -> str:
    """CIF text for ``cell`` in its stored setting (lengths in Angstrom, angles in degrees)."""
    kind = spglib.get_spacegroup_type(cell.hall_number)
    lattice = cell.structure.lattice
    formula = cell.structure.composition.formula
    lines = [
        f"data_{material_id}",
        "_audit_creation_method 'ebsdlake ingest'",
        f"_chemical_formula_sum '{formula}'",
        f"_cell_length_a {lattice.a:.6f}",
        f"_cell_length_b {lattice.b:.6f}",
        f"_cell_length_c {lattice.c:.6f}",
        f"_cell_angle_alpha {lattice.alpha:.6f}",
        f"_cell_angle_beta {lattice.beta:.6f}",
        f"_cell_angle_gamma {lattice.gamma:.6f}",
        f"_cell_volume {lattice.volume:.6f}",
        f"_space_group_IT_number {int(kind.number)}",
        f"_symmetry_Int_Tables_number {int(kind.number)}",
        f"_space_group_name_H-M_alt '{kind.international}'",
        f"_symmetry_space_group_name_H-M '{kind.international}'",
        f"_space_group_name_Hall '{kind.hall_symbol}'",
    ]
    code = _coordinate_code(cell)
    if code is not None:
        lines.append(f"_space_group_IT_coordinate_system_code '{code}'")
    ops = spglib.get_symmetry_from_database(cell.hall_number)
    lines += ["", "loop_", "_space_group_symop_id", "_space_group_symop_operation_xyz"]
    for index, (rot, trans) in enumerate(
        zip(ops["rotations"], ops["translations"], strict=True), start=1
    ):
        lines.append(f"{index} '{symop_xyz(rot, trans)}'")
    lines += [
        "",
        "loop_",
        "_atom_site_label",
        "_atom_site_type_symbol",
        "_atom_site_symmetry_multiplicity",
        "_atom_site_Wyckoff_symbol",
        "_atom_site_fract_x",
        "_atom_site_fract_y",
        "_atom_site_fract_z",
        "_atom_site_occupancy",
        "_atom_site_U_iso_or_equiv",
    ]
    for index, site in enumerate(cell.sites, start=1):
        u_iso = site.B_nm2 * 100.0 / (8.0 * np.pi**2)  # B [nm^2] -> U [Angstrom^2]
        x, y, z = site.xyz
        lines.append(
            f"{site.element}{index} {site.element} {site.multiplicity} {site.wyckoff} "
            f"{x:.8f} {y:.8f} {z:.8f} {site.occupancy:.4f} {u_iso:.6f}"
        )
    return "\n".join(lines) + "\n"

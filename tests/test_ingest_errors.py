"""Ingest refuses bad input with the file or option named: CIFs whose space-group symbol
pymatgen does not know or whose cell is impossible, tolerances that are not positive, and
Materials Project selections that cannot match; a rejected file is named once."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.app.cli import main
from ingest.cif import parse_cif, read_cif
from ingest.errors import CifError, IngestError
from ingest.materials_project import MPQuery
from ingest.synthetic import SyntheticParams, generate

FCC_CIF = """data_x
_cell_length_a {a}
_cell_length_b 3.52
_cell_length_c 3.52
_cell_angle_alpha 90
_cell_angle_beta {beta}
_cell_angle_gamma 90
_symmetry_space_group_name_H-M '{symbol}'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Ni1 Ni 0 0 0 1
"""


def _cif(tmp_path: Path, name: str, a="3.52", beta="90", symbol="F m -3 m") -> Path:
    path = tmp_path / name
    path.write_text(FCC_CIF.format(a=a, beta=beta, symbol=symbol))
    return path


def _one_line_error(capsys, argv: list[str]) -> tuple[str, str]:
    """(last stderr line, all of stderr) of a command that must exit 2."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1], err


def test_the_symbol_is_what_places_the_atoms(tmp_path):
    """The good file: Fm-3m expands the one Ni site to four (so P1 would be wrong)."""
    structure = parse_cif(_cif(tmp_path, "ni.cif"))
    assert len(structure) == 4 and structure.get_space_group_info()[1] == 225


def test_unknown_space_group_symbol_is_rejected_with_the_symbol(tmp_path):
    path = _cif(tmp_path, "q99.cif", symbol="Q 9 9")
    with pytest.raises(CifError) as info:
        parse_cif(path)
    assert str(info.value).startswith(
        f"{path}: unknown space group 'Q 9 9' (_symmetry_space_group_name_H-M)"
    )


def test_a_declared_p1_without_operations_is_still_read(tmp_path):
    structure = parse_cif(_cif(tmp_path, "p1.cif", symbol="P 1"))
    assert len(structure) == 1


@pytest.mark.parametrize(
    ("a", "beta", "reason"),
    [
        ("-3.5", "90", "_cell_length_a '-3.5' is not a positive length"),
        ("0", "90", "_cell_length_a '0' is not a positive length"),
        ("3.52", "190", "_cell_angle_beta '190' is not an angle in (0, 180) degrees"),
        ("3.52", "-90", "_cell_angle_beta '-90' is not an angle in (0, 180) degrees"),
    ],
)
def test_impossible_cells_are_rejected(tmp_path, a, beta, reason):
    path = _cif(tmp_path, "cell.cif", a=a, beta=beta)
    with pytest.raises(CifError) as info:
        read_cif(path)
    assert str(info.value) == f"{path}: {reason}"


def test_rejected_file_is_named_once(tmp_path, capsys):
    garbage = tmp_path / "garbage.cif"
    garbage.write_text("garbage\n")
    last, err = _one_line_error(
        capsys, ["--lake", str(tmp_path / "lake"), "ingest", "cif", str(garbage)]
    )
    assert last == (
        f"ebsdlake ingest: nothing ingested; first rejection: {garbage}: "
        "not a CIF with a unit cell (no _cell_length_a)"
    )
    assert f"{garbage}: {garbage}" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["synthetic", "--spacegroups", "225", "--symprec", "-1"],
        ["prototypes", "--only", "Ni", "--symprec", "0"],
        ["decorated", "--types", "B2", "--symprec", "-0.1"],
        ["cif", "any.cif", "--symprec", "-1"],
        ["mp", "--spacegroups", "225", "--symprec", "-1"],
    ],
)
def test_symprec_must_be_positive_before_anything_runs(tmp_path, capsys, argv):
    lake = tmp_path / "lake"
    last, _ = _one_line_error(capsys, ["--lake", str(lake), "ingest", *argv])
    value = argv[-1]
    assert last == (
        f"ebsdlake ingest: --symprec {float(value)}: must be a positive tolerance in Angstrom "
        "(e.g. 0.01)"
    )
    assert not lake.exists()


def test_symprec_from_the_config_is_named(tmp_path, capsys):
    config = tmp_path / "ebsdlake.toml"
    config.write_text("[ingest]\nsymprec = 0\n")
    argv = ["--config", str(config), "--lake", str(tmp_path / "lake"), "ingest", "prototypes"]
    last, _ = _one_line_error(capsys, argv)
    assert f"config file {config}: [ingest] symprec = 0.0: must be a positive tolerance" in last


def test_synthetic_params_refuse_a_non_positive_symprec():
    with pytest.raises(IngestError, match="--symprec -1: must be > 0"):
        list(generate([225], params=SyntheticParams(symprec=-1)))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--spacegroups", "225", "--num-sites", "5", "1"],
            "--num-sites 5 1: need 1 <= MIN <= MAX",
        ),
        (
            ["--spacegroups", "225", "--num-sites", "0", "4"],
            "--num-sites 0 4: need 1 <= MIN <= MAX",
        ),
        (["--crystal-system", "cubic", "--max-volume", "-5"], "--max-volume -5: must be > 0"),
        (["--spacegroups", "225", "--max-volume", "0"], "--max-volume 0: must be > 0"),
        (["--paper-preset", "--max-volume", "300"], "drop --spacegroups/--max-volume"),
    ],
)
def test_mp_selection_is_checked_before_the_key_or_network(
    tmp_path, capsys, monkeypatch, flags, message
):
    monkeypatch.delenv("MP_API_KEY", raising=False)
    monkeypatch.delenv("EBSDLAKE_INGEST_MP_API_KEY", raising=False)
    lake = tmp_path / "lake"
    last, _ = _one_line_error(capsys, ["--lake", str(lake), "ingest", "mp", *flags])
    assert message in last and not lake.exists()


def test_mp_query_max_volume_applies_with_and_without_groups():
    from ingest.materials_project import _search_kwargs

    alone = MPQuery(crystal_system="cubic", max_volume=30.0).validated()
    assert _search_kwargs(alone, None)["volume"] == (0.0, 30.0)
    preset = MPQuery(max_volume_by_group={225: 250.0, 229: None}, max_volume=30.0).validated()
    assert _search_kwargs(preset, 225)["volume"] == (0.0, 250.0)  # a group's own limit wins
    assert _search_kwargs(preset, 229)["volume"] == (0.0, 30.0)
    assert alone.as_provenance()["max_volume"] == 30.0

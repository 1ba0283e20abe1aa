"""Names and options a user guesses (issue #15), through the real ``ebsdlake`` CLI.

Global options after the command, ``--version``, material ids given as formulas or names,
help text on every argument, one name per thing, a CIF whose declared space group its
operators contradict, and single image files read as a folder of one.
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from cli_checks import one_line_error
from PIL import Image

from infra.app.cli import build_parser, main

NACL_DECLARED_FM3M = """data_NaCl
_symmetry_space_group_name_H-M 'F m -3 m'
_symmetry_Int_Tables_number 225
_cell_length_a 5.64
_cell_length_b 5.64
_cell_length_c 5.64
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
loop_
_symmetry_equiv_pos_as_xyz
'x, y, z'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Na1 Na 0 0 0
Cl1 Cl 0.5 0.5 0.5
"""

NI_CIF = """data_Ni
_symmetry_space_group_name_H-M 'F m -3 m'
_cell_length_a 3.524
_cell_length_b 3.524
_cell_length_c 3.524
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Ni1 Ni 0 0 0
"""


@pytest.fixture(scope="module")
def proto_lake(tmp_path_factory) -> str:
    """A lake with the prototypes Ni, Ni3Al and Fe, ingested through the CLI."""
    url = str(tmp_path_factory.mktemp("names") / "lake.zarr")
    assert main(["--lake", url, "ingest", "prototypes", "--only", "Ni", "Ni3Al", "Fe"]) == 0
    return url


# global options and --version -----------------------------------------------------------------


def test_global_options_are_accepted_after_the_command(proto_lake, tmp_path, capsys):
    assert main(["lake", "ls", "--lake", proto_lake]) == 0
    assert "proto-Ni3Al" in capsys.readouterr().out
    config = tmp_path / "ebsdlake.toml"
    config.write_text(f'[lake]\nurl = "{proto_lake}"\n')
    assert main(["lake", "show", "proto-Fe", "--config", str(config), "-v"]) == 0
    assert "proto-Fe" in capsys.readouterr().out
    # -v made Ray verbose for that command only: later commands (a subprocess too) stay quiet
    assert "EBSDLAKE_RAY_LOG_LEVEL" not in os.environ
    # given before the command, it is kept when not repeated after it
    assert main(["--lake", proto_lake, "lake", "show", "proto-Fe"]) == 0
    # repeated after the command, the later value wins
    missing = str(tmp_path / "nowhere.zarr")
    line = one_line_error(capsys, ["--lake", proto_lake, "lake", "ls", "--lake", missing])
    assert "nowhere.zarr" in line


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("ebsdlake ")


# material ids ---------------------------------------------------------------------------------


def test_ingest_only_takes_ids_names_and_formulas(tmp_path):
    from lake import Lake

    url = str(tmp_path / "lake.zarr")
    argv = ["--lake", url, "ingest", "prototypes", "--only", "proto-Ni", "AlNi3", "Fe", "Ni"]
    assert main(argv) == 0
    assert Lake.open(url, mode="r").structure_ids() == ["proto-Fe", "proto-Ni", "proto-Ni3Al"]


def test_ingest_only_suggests_the_closest_prototype(tmp_path, capsys):
    url = str(tmp_path / "lake.zarr")
    line = one_line_error(capsys, ["--lake", url, "ingest", "prototypes", "--only", "Nii"])
    assert "--only: no prototype 'Nii'; did you mean Ni" in line
    assert not Path(url).exists()


def test_a_formula_that_names_one_material_is_accepted(proto_lake, capsys):
    assert main(["--lake", proto_lake, "lake", "show", "Ni3Al"]) == 0
    assert "proto-Ni3Al" in capsys.readouterr().out
    # simulate resolves Ni3Al to proto-Ni3Al, which the space-group filter then leaves out
    line = one_line_error(
        capsys,
        ["--lake", proto_lake, "simulate", "--materials", "Ni3Al", "--spacegroups", "1"],
    )
    assert "no structures match the selection" in line
    # train resolves Ni to proto-Ni, which has no master yet
    line = one_line_error(
        capsys, ["--lake", proto_lake, "train", "--materials", "Ni", "Fe", "--folds", "1"]
    )
    assert "--materials: 'proto-Ni', 'proto-Fe' has no complete master" in line


def test_unknown_and_ambiguous_names_list_the_ids(proto_lake, tmp_path, capsys):
    line = one_line_error(capsys, ["--lake", proto_lake, "lake", "show", "Nii"])
    assert "no material 'Nii'" in line and "did you mean proto-Ni" in line
    line = one_line_error(capsys, ["--lake", proto_lake, "simulate", "--materials", "Nii"])
    assert "--materials: no material 'Nii'" in line and "proto-Ni" in line

    cif = tmp_path / "nickel.cif"
    cif.write_text(NI_CIF)
    assert main(["--lake", proto_lake, "ingest", "cif", str(cif)]) == 0
    capsys.readouterr()
    for argv in (
        ["lake", "show", "Ni"],
        ["simulate", "--materials", "Ni"],
        ["train", "--test-ids", "Ni", "--folds", "1"],
    ):
        line = one_line_error(capsys, ["--lake", proto_lake, *argv])
        assert "'Ni' names 2 materials (cif-nickel-" in line and "proto-Ni)" in line, line


# help text and names --------------------------------------------------------------------------


def _parsers(parser: argparse.ArgumentParser, path: str = "ebsdlake"):
    """Every (command path, parser) of the CLI, nested subcommands included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _parsers(child, f"{path} {name}")


def test_every_command_argument_and_option_has_help():
    missing = []
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                missing += [
                    f"{path} {choice.dest}" for choice in action._choices_actions if not choice.help
                ]
            elif not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"no help text: {missing}"


def test_one_name_for_the_network_option():
    parser = build_parser()
    science = ["bench", "science", "--out", "o"]
    assert parser.parse_args([*science, "--model", "resnet10"]).arch == "resnet10"
    assert parser.parse_args([*science, "--arch", "resnet10"]).arch == "resnet10"  # hidden alias
    assert parser.parse_args(science).arch == "resnet18"
    assert parser.parse_args(["train", "--arch", "resnet10"]).model == "resnet10"
    assert parser.parse_args(["train"]).model is None
    for path, sub in _parsers(parser):
        shown = sub.format_help()
        assert "--arch" not in shown, f"{path} --help still shows --arch"


# a CIF that contradicts itself ----------------------------------------------------------------


def test_cif_whose_operators_contradict_its_declared_group_is_ingested_with_a_warning(
    tmp_path, capsys
):
    cif = tmp_path / "nacl.cif"
    cif.write_text(NACL_DECLARED_FM3M)
    url = str(tmp_path / "lake.zarr")
    assert main(["--lake", url, "ingest", "cif", str(cif)]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warning) == 1, warning
    assert "nacl.cif: declares space group F m -3 m (225)" in warning[0]
    assert "give Pm-3m (221)" in warning[0]


def test_a_cif_that_agrees_with_itself_gives_no_warning(tmp_path, capsys):
    cif = tmp_path / "nickel.cif"
    cif.write_text(NI_CIF)
    assert main(["--lake", str(tmp_path / "lake.zarr"), "ingest", "cif", str(cif)]) == 0
    assert "warning" not in capsys.readouterr().err


# single image files -----------------------------------------------------------------------------


def test_a_single_image_reads_as_a_folder_of_one(tmp_path):
    from train.patterns.experimental import read_patterns

    rgb = (np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8)
    folder = tmp_path / "scan"
    folder.mkdir()
    Image.fromarray(rgb).save(folder / "p0.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        alone = read_patterns(folder / "p0.png")
        in_folder = read_patterns(folder)
    assert alone.patterns.shape == in_folder.patterns.shape == (1, 40, 48)
    assert alone.patterns.flags.writeable  # torch.from_numpy warns on a read-only array
    np.testing.assert_array_equal(alone.patterns, in_folder.patterns)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("scan.h5", "png", "scan.h5: named .h5 but holds a PNG image, not HDF5"),
        ("scan.h5", "text", "scan.h5: named .h5 but holds text, not HDF5"),
        ("pattern.png", "text", "pattern.png: not a readable image"),
        ("scan.xyz", "text", "scan.xyz: not a readable EBSD file (text: not a format kikuchipy"),
    ],
)
def test_a_file_that_is_not_what_its_name_says_is_one_line(
    tmp_path, capfd, name, content, expected
):
    from train.patterns.errors import PatternError
    from train.patterns.experimental import read_patterns

    path = tmp_path / name
    if content == "png":
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(path, format="PNG")
    else:
        path.write_text("not patterns\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no kikuchipy warning reaches the user
        with pytest.raises(PatternError) as info:
            read_patterns(path)
    message = str(info.value)
    assert expected in message and "\n" not in message
    assert "pip install" not in message and "please report" not in message
    captured = capfd.readouterr()
    assert not captured.out and not captured.err


def test_predict_names_a_file_that_is_not_what_its_name_says_in_one_line(tmp_path, capfd):
    from train.models import build_classifier
    from train.runs.run import CLASSES_FILE, CONFIG_FILE, METRICS_FILE, READING_FILE, Run
    from train.runs.training import run_config_of
    from train.supervised import SupervisedConfig

    url = str(tmp_path / "lake.zarr")
    assert main(["--lake", url, "ingest", "prototypes", "--only", "Fe"]) == 0
    config = SupervisedConfig(arch="resnet10", image_size=32, detector_shape=(32, 32))
    run = Run(open_lake_for_runs(url), "r1")
    run.put_json(CONFIG_FILE, run_config_of("supervised", config, url, [], None, []))
    run.put_json(CLASSES_FILE, [225, 229])
    run.put_json(READING_FILE, config.reading([225, 229]).to_dict())
    run.put_json(METRICS_FILE, {"history": []})
    run.put_model({"model": build_classifier(2, config.arch).state_dict()})
    fake = tmp_path / "scan.h5"
    fake.write_text("exported as text by mistake\n")
    capfd.readouterr()
    code = main(["--lake", url, "predict", "r1", str(fake), "--out", str(tmp_path / "out")])
    captured = capfd.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2 and len(lines) == 1, captured.err
    assert "scan.h5: named .h5 but holds text, not HDF5" in lines[0]


def open_lake_for_runs(url: str):
    """The lake at ``url`` opened to write run files."""
    from train.runs.run import open_lake

    return open_lake(url, {}, mode="r+")

"""The README's user stories, end to end at test size.

1. Beyond cubic: synthetic crystals of other crystal systems are ingested, simulated and
   trained on a non-space-group label.
2. Sharing a lake: one team writes an S3 lake (including an imported EMsoft master); another
   reads it anonymously, read-only, and sees who simulated what with which settings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.app.cli import main
from lake import Lake, LakeReadOnlyError
from simulate.validation import emsoft_ni_master_file

EMSOFT_NI = emsoft_ni_master_file()
TINY_SIMULATION = ["--npx", "10", "--dmin", "0.2", "--energies", "20:20:1", "--mc-electrons",
                   "2000", "--bethe", "4", "8", "50", "--precision", "single", "--quiet"]  # fmt: skip


def _config(path: Path, url: str, storage_options: dict) -> Path:
    options = json.dumps(storage_options).replace('": ', '" = ')
    path.write_text(f'[lake]\nurl = "{url}"\nstorage_options = {options}\n')
    return path


def _publish_bucket(url: str, endpoint: str) -> None:
    """Let everyone list the bucket (its objects are written ``public-read`` by team A)."""
    import boto3

    bucket = url.removeprefix("s3://").split("/", 1)[0]
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.put_bucket_acl(Bucket=bucket, ACL="public-read")


@pytest.mark.slow
def test_sharing_a_lake_across_teams(s3_lake_url, tmp_path, monkeypatch, capsys):
    url, options = s3_lake_url
    # team A publishes what it writes: every object public-read, through s3fs's own option
    writer_options = {**options, "s3_additional_kwargs": {"ACL": "public-read"}}
    _publish_bucket(url, options["endpoint_url"])
    team_a = _config(tmp_path / "team-a.toml", url, writer_options)
    assert main(["--config", str(team_a), "ingest", "prototypes", "--only", "Si"]) == 0
    assert main(["--config", str(team_a), "simulate", *TINY_SIMULATION]) == 0
    assert main(["--config", str(team_a), "lake", "import-emsoft", str(EMSOFT_NI),
                 "--material-id", "emsoft-ni"]) == 0  # fmt: skip

    # Team B reads it with no credentials at all.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    anonymous = {"anon": True, "endpoint_url": writer_options["endpoint_url"]}
    reader = Lake.open(url, storage_options=anonymous, mode="r")
    catalog = reader.catalog().set_index("material_id")
    assert catalog.loc["proto-Si", "status"] == "complete"
    assert catalog.loc["emsoft-ni", "status"] == "complete"

    # Provenance: engine, version and settings of each master; the source of each structure.
    simulated = reader.master("proto-Si", variant="default").attrs
    assert simulated["engine"] == "dynamical" and simulated["npx"] == 10
    assert "de-ebsd" in simulated["engine_version"] and simulated["bfactors_nm2"]
    imported = reader.master("emsoft-ni", variant="default")
    assert "emsoft" in json.dumps(imported.attrs).lower()
    assert imported.sizes["row"] == imported.sizes["col"] > 100  # EMsoft's own npx grid
    assert reader.structure("proto-Si")["source"] == "prototype"

    with pytest.raises(LakeReadOnlyError):
        reader.remove("proto-Si")
    team_b = _config(tmp_path / "team-b.toml", url, anonymous)
    monkeypatch.setenv("COLUMNS", "220")  # room for whole ids in the table
    capsys.readouterr()
    assert main(["--config", str(team_b), "lake", "ls"]) == 0
    listing = capsys.readouterr().out
    assert "proto-Si" in listing and "emsoft-ni" in listing


@pytest.mark.slow
def test_beyond_cubic_ingest_simulate_train_on_crystal_system(tmp_path, capsys):
    lake_url = str(tmp_path / "lake.zarr")
    # hexagonal Mg-type and tetragonal groups besides cubic ones, two crystals each
    groups = "194,191,139,123,225,229"
    assert main(["--lake", lake_url, "ingest", "synthetic", "--spacegroups", groups,
                 "--per-group", "2", "--seed", "3", "--n-elements", "1", "--max-wyckoff", "1",
                 "--elements", "Fe", "Ni", "Cu", "Mo"]) == 0  # fmt: skip
    lake = Lake.open(lake_url, mode="r")
    systems = {lake.structure(m)["crystal_system"] for m in lake.structure_ids()}
    assert systems == {"hexagonal", "tetragonal", "cubic"}

    assert main(["--lake", lake_url, "simulate", *TINY_SIMULATION, "--num-actors", "2"]) == 0
    ids = lake.structure_ids()
    assert all(lake.master_status(m, "default") == "complete" for m in ids)

    test_ids = sorted(ids)[::4]
    assert main(["--lake", lake_url, "train", "--label", "crystal_system", "--folds", "1",
                 "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8",
                 "--image-size", "32", "--model", "resnet10", "--run-id", "systems",
                 "--patterns-per-material", "4", "--test-ids", *test_ids]) == 0  # fmt: skip
    classes = json.loads(lake.get_run_file("systems", "classes.json"))
    assert sorted(classes if isinstance(classes, list) else classes["classes"]) == [
        "cubic",
        "hexagonal",
        "tetragonal",
    ]

"""Opening lakes that are missing, foreign, newer, or behind wrong credentials."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lake import FORMAT_VERSION, Lake, LakeAccessError, LakeFormatError, LakeNotFoundError


def test_missing_local_lake_read_only(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(LakeNotFoundError, match="nowhere: no lake here"):
        Lake.open(str(missing), mode="r")
    assert not missing.exists()


def test_open_creates_a_versioned_root(local_lake):
    url, _ = local_lake
    lk = Lake.open(url, create=True)
    assert lk.format_version == FORMAT_VERSION
    root = json.loads(Path(url, "zarr.json").read_text())
    assert root["attributes"]["ebsdlake"] == {"format": FORMAT_VERSION}


def test_newer_format_is_refused(local_lake):
    url, _ = local_lake
    Lake.open(url, create=True)
    path = os.path.join(url, "zarr.json")
    root = json.loads(Path(path).read_text())
    root["attributes"]["ebsdlake"]["format"] = FORMAT_VERSION + 1
    with open(path, "w") as handle:
        json.dump(root, handle)
    with pytest.raises(LakeFormatError, match=f"format {FORMAT_VERSION + 1} is newer"):
        Lake.open(url, mode="r")


def test_foreign_zarr_store_is_refused(local_lake):
    import zarr

    url, _ = local_lake
    zarr.create_group(url, attributes={"something": "else"})
    with pytest.raises(LakeFormatError, match="not an ebsdlake lake"):
        Lake.open(url)


def test_missing_s3_prefix_read_only(s3_lake_url):
    url, options = s3_lake_url
    with pytest.raises(LakeNotFoundError, match="no lake here"):
        Lake.open(url, storage_options=options, mode="r")


def test_missing_bucket(s3_lake_url):
    _, options = s3_lake_url
    for mode in ("r", "r+"):
        with pytest.raises(LakeNotFoundError, match="bucket 'no-such-bucket' does not exist"):
            Lake.open("s3://no-such-bucket/lake", storage_options=options, mode=mode)


def test_wrong_credentials(s3_lake_url, monkeypatch):
    """With authentication switched on in the server, unknown keys are refused."""
    import moto.settings
    import s3fs

    url, options = s3_lake_url
    Lake.open(url, storage_options=options, create=True)
    s3fs.S3FileSystem.clear_instance_cache()
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    wrong = {**options, "key": "AKIAWRONGWRONGWRONG1", "secret": "wrong-secret"}
    with pytest.raises(LakeAccessError, match="access denied.*check the credentials"):
        Lake.open(url, storage_options=wrong, mode="r")


def test_root_metadata_that_is_not_an_object_is_named(local_lake):
    url, _ = local_lake
    Path(url).mkdir(parents=True, exist_ok=True)
    Path(url, "zarr.json").write_text("[1, 2]")
    with pytest.raises(
        LakeFormatError, match="root metadata unreadable: .*JSON list, not an object"
    ):
        Lake.open(url, mode="r")


def test_r_plus_writes_into_an_existing_lake_only(tmp_path):
    missing = tmp_path / "typo"
    with pytest.raises(LakeNotFoundError, match="typo: no lake here"):
        Lake.open(str(missing), mode="r+")
    assert not missing.exists()
    Lake.open(str(tmp_path / "lake"), create=True)  # created explicitly
    lk = Lake.open(str(tmp_path / "lake"), mode="r+")
    assert not lk.read_only
    lk.put_structure("mp-1", cif="data_x", attrs={"formula": "X"})
    assert Lake.open(str(tmp_path / "lake"), mode="r").structure("mp-1")["formula"] == "X"

"""Shared pytest fixtures: lakes on local disk and on a real S3 protocol server on loopback.

The S3 server is moto's ``ThreadedMotoServer`` bound to 127.0.0.1 on a free port, started
once per test session (as s3fs's own test-suite does). Each test that asks for
``s3_lake_url`` gets a server reset, a fresh bucket, dummy credentials in the environment and
in the storage options, and an empty s3fs instance cache, so no state leaks between tests.

Fixtures for teammates
----------------------
``s3_endpoint``   the server URL, ``http://127.0.0.1:<port>`` (session scope).
``s3_lake_url``   ``(url, storage_options)`` of an empty ``s3://<bucket>/lake`` prefix.
``local_lake``    ``(url, storage_options)`` of an empty local folder under ``tmp_path``.
``memory_lake``   ``(url, storage_options)`` of a fresh ``memory://`` lake.
``any_lake``      parametrised over local, memory and S3 (``(url, storage_options)``).
``kikuchipy_data_dir``  kikuchipy's EMsoft Ni data folder (master file, namelists, .xtal).
``kikuchipy_ni_file``   EMsoft's Ni master file in it (20 keV, npx 200).
"""

from __future__ import annotations

import gc
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Quiet asyncio before pytest's final garbage collection: the aiohttp sessions of s3fs's
    cached filesystems are collected after pytest closed its streams, and their "Unclosed client
    session" report (harmless; CLI runs close cleanly) would print as a logging traceback."""
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)


DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}

LakeTarget = tuple[str, dict[str, Any]]


def s3_storage_options(endpoint: str) -> dict[str, Any]:
    """Storage options that point s3fs at the loopback server with the dummy credentials."""
    return {
        "endpoint_url": endpoint,
        "key": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "secret": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "client_kwargs": {"region_name": DUMMY_CREDENTIALS["AWS_DEFAULT_REGION"]},
    }


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Start moto's S3 server on 127.0.0.1 (free port) for the whole session."""
    from moto.server import ThreadedMotoServer

    saved = {name: os.environ.get(name) for name in DUMMY_CREDENTIALS}
    os.environ.update(DUMMY_CREDENTIALS)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> Iterator[str]:
    """Reset the server and create an empty, uniquely named bucket."""
    import boto3
    import requests
    import s3fs

    requests.post(f"{s3_endpoint}/moto-api/reset", timeout=30).raise_for_status()
    s3fs.S3FileSystem.clear_instance_cache()
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    yield bucket
    s3fs.S3FileSystem.clear_instance_cache()
    # Collect the dropped clients now: their aiohttp sessions' finalizers run Python code
    # (and log), and CPython 3.11.7 raises a spurious "AST constructor recursion depth
    # mismatch" SystemError when such a collection lands inside another test's ast.literal_eval.
    gc.collect()


@pytest.fixture
def s3_lake_url(s3_endpoint: str, s3_bucket: str) -> LakeTarget:
    """``(url, storage_options)`` of an empty lake prefix in a fresh bucket on loopback S3."""
    return f"s3://{s3_bucket}/lake", s3_storage_options(s3_endpoint)


@pytest.fixture
def local_lake(tmp_path: Any) -> LakeTarget:
    """``(url, storage_options)`` of a not-yet-existing local lake folder."""
    return str(tmp_path / "lake"), {}


@pytest.fixture
def memory_lake() -> Iterator[LakeTarget]:
    """``(url, storage_options)`` of a fresh in-memory lake (removed afterwards)."""
    import fsspec

    name = f"memory://lake-{uuid.uuid4().hex[:12]}"
    yield name, {}
    fs = fsspec.filesystem("memory")
    if fs.exists(name):
        fs.rm(name, recursive=True)


@pytest.fixture(params=["local", "memory", "s3"])
def any_lake(request: pytest.FixtureRequest) -> LakeTarget:
    """The same test on a local folder, ``memory://`` and loopback S3."""
    fixture = {"local": "local_lake", "memory": "memory_lake", "s3": "s3_lake_url"}[request.param]
    return request.getfixturevalue(fixture)


def synthetic_master(seed: int, n_energies: int = 3, npx: int = 10) -> Any:
    """A deterministic float32 master ``(n_energies, 2, 2*npx+1, 2*npx+1)`` for lake tests.

    Smooth bands plus noise, so compression behaves like on real patterns; the same seed always
    gives the same bytes, which lets a test re-create what another process wrote.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    side = 2 * npx + 1
    grid = np.linspace(-1.0, 1.0, side, dtype=np.float32)
    xx, yy = np.meshgrid(grid, grid)
    planes = []
    for energy in range(n_energies):
        bands = np.cos(7.0 * xx + 3.0 * energy) * np.sin(5.0 * yy + seed)
        planes.append(np.stack([bands, bands.T]))
    master = np.asarray(planes, dtype=np.float32)
    return (master + 0.05 * rng.standard_normal(master.shape)).astype(np.float32)


@pytest.fixture
def make_master() -> Any:
    """Factory fixture: ``make_master(seed, n_energies=3, npx=10)`` -> float32 master."""
    return synthetic_master


@pytest.fixture(scope="session")
def kikuchipy_data_dir() -> Path:
    """kikuchipy's real EMsoft Ni master-pattern data (file, namelists, .xtal)."""
    from train.patterns.sample_scans import kikuchipy_data

    return kikuchipy_data() / "emsoft_ebsd_master_pattern"


@pytest.fixture(scope="session")
def kikuchipy_ni_file(kikuchipy_data_dir: Path) -> Path:
    """EMsoft's Ni master file as kikuchipy ships it (20 keV, npx 200, Bethe 4/8/50)."""
    from simulate.validation import NI_MASTER_NAME

    return kikuchipy_data_dir / NI_MASTER_NAME

"""kikuchipy's real Ni scan in its three bundled formats (the same nine raw patterns; h5ebsd
and NORDIF carry a static background, EDAX does not), for the shipped models' tests."""

from __future__ import annotations

from train.patterns.sample_scans import kikuchipy_data, kikuchipy_ni_files

KIKUCHIPY_DATA = kikuchipy_data()
NI_FILES = kikuchipy_ni_files()

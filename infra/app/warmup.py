"""Compile the numba kernels ebsdlake relies on, once, in one process.

numba writes its on-disk cache without locking between processes. On a fresh install, several
Ray workers that import orix (through de-ebsd and kikuchipy) at the same moment can write one
cache entry together and leave a file that crashes the next process loading it with a
segmentation fault (seen on a fresh CI clone). The venv bootstrap (``make``) runs this module
right after installing, so later processes only read complete cache files.
"""

from __future__ import annotations

import time


def warm_up() -> dict[str, float]:
    """Import and run each numba-backed path at a tiny size; returns seconds per step."""
    import numpy as np

    seconds: dict[str, float] = {}

    def step(name: str, action) -> None:
        started = time.perf_counter()
        action()
        seconds[name] = time.perf_counter() - started

    def orix_import() -> None:
        import orix.plot  # noqa: F401  (module-level symmetry construction runs gufuncs)
        import orix.quaternion.symmetry  # noqa: F401

    def engine_import() -> None:
        import de_ebsd  # noqa: F401
        import kikuchipy  # noqa: F401

    def projection_kernels() -> None:
        import torch

        from train.patterns.detector import Detector
        from train.patterns.orientations import sample_so3
        from train.patterns.preprocess import PreprocessConfig, preprocess_tensor
        from train.patterns.projection import Projector

        masters = torch.rand((1, 2, 9, 9), dtype=torch.float32)
        quats = np.asarray(sample_so3(2, seed=0))
        patterns = Projector(Detector.paper(shape=(8, 8)), backend="fused")(
            masters, np.zeros(2, dtype=np.int64), quats
        )
        preprocess_tensor(patterns, PreprocessConfig(), cpu_kernel=True)

    def tiny_master() -> None:
        from simulate.engines import get_engine

        get_engine("dynamical").warm_up(device="cpu")

    step("orix", orix_import)
    step("de-ebsd + kikuchipy", engine_import)
    step("dynamical engine (tiny master)", tiny_master)
    step("projection kernels", projection_kernels)
    return seconds


def main() -> None:
    """Entry for ``python -m infra.app.warmup``: print what was compiled and how long it took."""
    for name, seconds in warm_up().items():
        print(f"numba warm-up: {name} {seconds:.1f} s")


if __name__ == "__main__":
    main()

"""What every refused command must look like: exit code 2 and one stderr line, no traceback.

Import with ``from cli_checks import one_line_error`` (tests/ is on sys.path under pytest).
"""

from __future__ import annotations

import pytest

from infra.app.cli import main


def one_line_error(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    """Run ``ebsdlake argv`` in this process; assert exit code 2 and a single stderr line
    without a traceback; return that line."""
    code = main(argv)
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.err
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]

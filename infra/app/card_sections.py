"""Additions to a written model package's card: fields into ``card.json``, a section appended
to ``card.md``. The build's stages (build record, extra evaluations, master costs) each add
theirs through here, so the card files are read and written the same way everywhere."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """A markdown table as lines (cells already formatted as text)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def add_to_card(
    package: Path, change: Callable[[dict[str, Any]], None], lines: Sequence[str]
) -> dict[str, Any]:
    """Apply ``change`` to the package's ``card.json`` (in place), append ``lines`` to its
    ``card.md``; return the changed card."""
    card_path = Path(package) / "card.json"
    card: dict[str, Any] = json.loads(card_path.read_text())
    change(card)
    card_path.write_text(json.dumps(card, indent=2, sort_keys=True))
    with open(Path(package) / "card.md", "a") as handle:
        handle.write("\n".join(lines))
    return card

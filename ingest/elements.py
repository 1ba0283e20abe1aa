"""Element validation: the simulation engines tabulate scattering factors for Z = 1-98."""

from __future__ import annotations

from collections.abc import Iterable

from pymatgen.core import Element

from ingest.errors import IngestError

#: Largest atomic number the scattering-factor tables (EMsoft, de-ebsd) cover (Cf).
MAX_ATOMIC_NUMBER = 98


def check_element(symbol: str, what: str = "element") -> str:
    """Return the canonical symbol of ``symbol`` or raise :class:`IngestError` naming it."""
    text = str(symbol).strip()
    try:
        element = Element(text[:1].upper() + text[1:].lower())
    except (ValueError, KeyError):
        raise IngestError(
            f"{what}: unknown element {symbol!r} (valid: symbols H to Cf, Z 1-98)"
        ) from None
    if element.Z > MAX_ATOMIC_NUMBER:
        raise IngestError(
            f"{what}: element {element.symbol} (Z={element.Z}) has no scattering factors "
            "(valid: Z 1-98)"
        )
    return element.symbol


def check_elements(symbols: Iterable[str], what: str = "elements") -> list[str]:
    """Validate each symbol; return the canonical symbols in order."""
    return [check_element(s, what) for s in symbols]

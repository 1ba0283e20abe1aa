"""How a Laue-class gate changes a cubic model's calls on crystals inside and outside its classes.

Materials the gate never trained on (its held-out materials and its space groups held out
whole, from the gate's card) are rendered by kikuchipy (not our projector) on a lab detector
(4:3, screen edge, background, shot noise) and predicted by the model with and without the gate.
Out of scope (a Laue class the model has no class for): the share called uncertain should rise.
In scope: the share still called confidently, and how often those calls are right, should hold.

    .venv/bin/python scripts/gate_check.py --lake LAKE --model cubic-lab \
        --gate train/shipped_models/systems-lab --per-material 10 --out gate.json

LAKE is the lake the gate was built into (``model build systems-lab``). Prints a table and
writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

LAB_DETECTOR = {"shape": (60, 80), "pc": (0.48, 0.3, 0.6), "px_size": 70.0, "sample_tilt": 70.0}
"""A lab camera unlike any training detector: 4:3, Bruker PC (0.48, 0.3, 0.6)."""


def _never_trained(card: dict) -> list[str]:
    """The gate's held-out materials and those of its space groups held out whole."""
    unseen = (card.get("extra_evaluations") or {}).get("unseen_groups") or {}
    return sorted(set(card["training"]["test_ids"]) | set(unseen.get("per_material") or {}))


def _predict(model, path: Path, gate) -> dict:
    from train.runs.predict import predict_loaded

    (prediction,) = list(predict_loaded(model, [str(path)], None, gate))
    return {
        "verdict": prediction.verdict,
        "predicted": prediction.predicted,
        "gate_calls": None if prediction.gate is None else prediction.gate.calls,
    }


def _figures(labels: list, ungated: dict, gated: dict, classes: list) -> dict:
    """Uncertain share with and without the gate; accuracy of confident calls on labels the
    model has."""
    out: dict = {"patterns": len(labels)}
    for name, result in (("ungated", ungated), ("gated", gated)):
        confident = np.array(result["verdict"]) == "confident"
        right = np.array([p == t for p, t in zip(result["predicted"], labels, strict=True)])
        known = np.array([t in classes for t in labels])
        out[name] = {
            "uncertain": round(float(1 - confident.mean()), 3),
            "confident_right": round(float(right[confident & known].mean()), 3)
            if (confident & known).any()
            else None,
        }
    if gated["gate_calls"] is not None:
        out["gate_calls"] = dict(Counter(gated["gate_calls"]).most_common())
    return out


def gate_check(lake_url: str, model_name: str, gate_name: str, per_material: int) -> dict:
    """Render, predict with and without the gate, and return the figures per scope."""
    from kikuchipy.detectors import EBSDDetector

    from lake import Lake
    from train.patterns.rendered_scan import render_scan
    from train.runs.inference import load_model
    from train.runs.scope_gate import ScopeGate
    from train.shipped import SHIPPED_MODELS

    model, gate_model = load_model(model_name), load_model(gate_name)
    gate = ScopeGate.for_model(model, gate_model)
    folder = Path(gate_name) if Path(gate_name).is_dir() else SHIPPED_MODELS / gate_name
    card = json.loads((folder / "card.json").read_text())
    lake = Lake.open(lake_url, mode="r")
    ids = [m for m in _never_trained(card) if "default" in lake.variants(m)]
    laue = {m: lake.structure_record(m).label("disordered_laue_class") for m in ids}
    scopes = {
        "in scope": [m for m in ids if laue[m] in gate.accepted],
        "out of scope": [m for m in ids if laue[m] not in gate.accepted],
    }
    detector = EBSDDetector(**LAB_DETECTOR)
    results: dict = {"model": model_name, "gate": gate_name, "detector": LAB_DETECTOR}
    with tempfile.TemporaryDirectory() as folder:
        for scope, members in scopes.items():
            if not members:
                continue
            path = Path(folder) / f"{scope.replace(' ', '_')}.h5"
            labels = render_scan(
                lake, members, path, detector, degrade=True, n_per_material=per_material,
                label_key=model.reading.label,
            )  # fmt: skip
            figures = _figures(
                labels,
                _predict(model, path, None),
                _predict(model, path, gate_model),
                model.classes,
            )
            results[scope] = {"materials": len(members), **figures}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", required=True, help="the lake the gate was built into")
    parser.add_argument("--model", default="cubic-lab", help="the gated model (name or folder)")
    parser.add_argument("--gate", default="systems-lab", help="the Laue-class model")
    parser.add_argument("--per-material", type=int, default=10, help="patterns per material")
    parser.add_argument("--out", default="gate.json", help="JSON of the figures")
    args = parser.parse_args(argv)
    results = gate_check(args.lake, args.model, args.gate, args.per_material)
    Path(args.out).write_text(json.dumps(results, indent=2, sort_keys=True))
    for scope in ("in scope", "out of scope"):
        if scope not in results:
            continue
        block = results[scope]
        print(
            f"{scope}: {block['materials']} materials, {block['patterns']} patterns; uncertain "
            f"{block['ungated']['uncertain']:.2f} -> {block['gated']['uncertain']:.2f} with the "
            f"gate; confident calls right {block['ungated']['confident_right']} -> "
            f"{block['gated']['confident_right']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

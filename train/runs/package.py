"""Model packages: a finished, calibrated run made portable (``ebsdlake model export``).

A package is a folder ``<NAME>/`` holding ``model.pt`` (weights), ``config.json`` (kind,
architecture and every training setting), ``classes.json``, ``reading.json`` (pre-processing,
detector geometry, input size), ``calibration.json`` (temperature, threshold) and a model card
(``card.json`` and the same as text, ``card.md``): what it was trained on, the measured
accuracies (from the run's ``evaluation.json`` and ``protocol.json``), the calibration, the
commands that rebuild it and its size in MB (10^6 bytes). ``train.runs.inference.load_model``
loads it by path, or by name from ``train/shipped_models/`` (shipped with the wheel). Export
also stores the card in the run (``card.json``), so ``ebsdlake model ls`` lists the lake's
packaged runs beside the shipped ones.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

from train.errors import TrainingError
from train.runs.beam_energy import trained_beam_energies
from train.runs.calibration import Calibration
from train.runs.card_ids import id_list
from train.runs.inference import load_model
from train.runs.run import (
    CALIBRATION_FILE,
    CARD_FILE,
    CLASSES_FILE,
    CONFIG_FILE,
    EVALUATION_FILE,
    MODEL_FILE,
    PROTOCOL_FILE,
    READING_FILE,
    Run,
    as_stored_json,
    open_lake,
)
from train.runs.scores import mean_interval
from train.shipped import SHIPPED_MODELS, shipped_model_names
from train.supervised import SupervisedConfig
from train.targets import class_symbol

CARD_FORMAT = 1
CARD_TEXT_FILE = "card.md"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: ``SupervisedConfig`` field -> ``ebsdlake train`` flag, for the rebuild command.
TRAIN_FLAGS = {
    "label": "--label",
    "arch": "--model",
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "lr": "--lr",
    "lr_schedule": "--lr-schedule",
    "init_from": "--init-from",
    "image_size": "--image-size",
    "num_workers": "--workers",
    "cpu_threads": "--cpu-threads",
    "steps_per_epoch": "--steps-per-epoch",
    "patterns_per_material": "--patterns-per-material",
    "variants": "--variants",
    "seed": "--seed",
    "pc": "--pc",
    "pc_range": "--pc-range",
    "degrade": "--degrade",
    "detector_shape": "--detector-shape",
}
CONFUSION_FIGURE = "confusion.png"
"""The held-out confusion matrix figure of the run's evaluation, copied into the package."""
RUNTIME_FIELDS = ("use_gpu", "max_failures", "fault", "stream_device")


def half_precision_weights(model_file: bytes) -> bytes:
    """``model.pt`` bytes with its float32 tensors stored as float16 (half the size).

    A package is read-only and loaded into float32 networks (``load_state_dict`` casts), so
    only the storage changes: class probabilities moved by at most 0.002 for cubic-lab on
    kikuchipy's Ni scans.
    """
    import io

    import torch

    state = torch.load(io.BytesIO(model_file), map_location="cpu", weights_only=True)
    halved = {
        module: {
            key: value.half() if value.dtype == torch.float32 else value
            for key, value in tensors.items()
        }
        for module, tensors in state.items()
    }
    buffer = io.BytesIO()
    torch.save(halved, buffer)
    return buffer.getvalue()


def export_model(
    lake_url: str, storage_options: dict | None, run_id: str, name: str, out_dir: str | Path
) -> Path:
    """Write run ``run_id`` as the package ``<out_dir>/<name>/``; return its folder.

    Raises
    ------
    TrainingError
        One line: a bad name, an existing destination, an unfinished or uncalibrated run.
    """
    if not NAME_PATTERN.match(name):
        raise TrainingError(
            f"model name {name!r}: use letters, digits, '.', '_' or '-' (at most 64, no '/')"
        )
    destination = Path(out_dir) / name
    if destination.exists():
        raise TrainingError(
            f"model {name!r}: {destination} exists; choose another name or remove it"
        )
    run = Run(open_lake(lake_url, storage_options, mode="a"), run_id).require()
    if run.status != "finished":
        raise TrainingError(f"run {run_id!r} is unfinished (no {MODEL_FILE}); train it first")
    if not run.has(CALIBRATION_FILE):
        raise TrainingError(
            f"run {run_id!r} has no {CALIBRATION_FILE}; run `ebsdlake calibrate {run_id}` first"
        )
    files = {
        MODEL_FILE: half_precision_weights(run.get_bytes(MODEL_FILE)),
        CONFIG_FILE: _json_bytes(run.config),
        CLASSES_FILE: _json_bytes(run.classes),
        READING_FILE: _json_bytes(run.reading().to_dict()),
        CALIBRATION_FILE: _json_bytes(run.get_json(CALIBRATION_FILE)),
    }
    if run.has(CONFUSION_FIGURE):
        files[CONFUSION_FIGURE] = run.get_bytes(CONFUSION_FIGURE)
    card = model_card(run, name, len(files[MODEL_FILE]))
    files[CARD_FILE] = _json_bytes(card)
    files[CARD_TEXT_FILE] = card_markdown(card).encode()
    partial = destination.with_name(f".{name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        for file_name, data in files.items():
            (partial / file_name).write_bytes(data)
        load_model(partial)  # the package must load on its own before it is published
        partial.rename(destination)
    except OSError as exc:
        raise TrainingError(f"model {name!r}: cannot write {destination} ({exc})") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    run.put_json(CARD_FILE, card)
    return destination


def model_card(run: Run, name: str, model_bytes: int) -> dict[str, Any]:
    """The card of a run: training set and settings, accuracies, calibration, rebuild, size."""
    config = run.config
    settings = config.get("config") or {}
    reading = run.reading()
    classes = run.classes
    card: dict[str, Any] = {
        "format": CARD_FORMAT,
        "name": name,
        "run_id": run.run_id,
        "kind": run.kind,
        "label": reading.label,
        "classes": classes,
        "symbols": [class_symbol(reading.label, c) for c in classes],
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "ebsdlake_version": _version(),
        "size_mb": round(model_bytes / 1e6, 3),
        "training": {
            "lake_url": config.get("lake_url"),
            "train_ids": list(config.get("train_ids") or []),
            "val_ids": list(config.get("val_ids") or []),
            "test_ids": list(config.get("test_ids") or []),
            "settings": settings,
        },
        "reading": reading.to_dict(),
        "calibration": Calibration.from_dict(run.get_json(CALIBRATION_FILE)).to_dict(),
        "accuracy": _accuracy(run),
        "protocol": _protocol(run),
    }
    card["rebuild"] = rebuild_commands(card)
    return card


def _accuracy(run: Run) -> dict[str, Any] | None:
    """Held-out accuracy of ``evaluation.json`` with a 95 % interval over materials."""
    if not run.has(EVALUATION_FILE):
        return None
    return accuracy_summary(run.get_json(EVALUATION_FILE))


def accuracy_summary(evaluation: dict[str, Any]) -> dict[str, Any]:
    """A card's accuracy block from an evaluation summary (``Evaluation.summary()``): accuracy,
    95 % interval over materials, per class, per material, confusion."""
    per_material = evaluation.get("per_material") or {}
    return {
        "held_out": evaluation.get("accuracy"),
        "interval_over_materials": mean_interval(list(per_material.values()))
        if per_material
        else None,
        "n_materials": len(per_material),
        "n_patterns": evaluation.get("n_patterns"),
        "per_class": evaluation.get("per_class"),
        "per_material": per_material,
        "confusion": evaluation.get("confusion"),
        "confusion_rows": evaluation.get("row_labels"),
        "confusion_columns": evaluation.get("classes"),
        "seen_in_training": evaluation.get("seen_in_training") or [],
    }


def _protocol(run: Run) -> dict[str, Any] | None:
    """The k-fold protocol's figures (``protocol.json``), without the per-epoch history."""
    if not run.has(PROTOCOL_FILE):
        return None
    protocol = run.get_json(PROTOCOL_FILE)
    return {k: v for k, v in protocol.items() if k != "final_history"}


def rebuild_commands(card: dict[str, Any]) -> list[str]:
    """The commands that rebuild the package on the same lake (``LAKE``): train (flags for the
    settings the CLI takes; a note when other settings differ from the defaults), evaluate,
    calibrate, export."""
    training = card["training"]
    settings = training["settings"]
    run_id = card["run_id"]
    parts = ["ebsdlake --lake LAKE train", f"--run-id {run_id}"]
    for field, flag in TRAIN_FLAGS.items():
        value = settings.get(field)
        if value is None or value is False:
            continue
        if value is True:
            parts.append(flag)
            continue
        shown = " ".join(map(str, _flat(value))) if isinstance(value, list) else str(value)
        parts.append(f"{flag} {shown}")
    folds = len((card.get("protocol") or {}).get("folds") or {}) or 1
    parts.append(f"--folds {folds}")
    materials = sorted(set(training["train_ids"]) | set(training["test_ids"]))
    if materials:
        parts.append("--materials " + " ".join(materials))
    if training["test_ids"]:
        parts.append("--test-ids " + " ".join(training["test_ids"]))
    commands = [" ".join(parts)]
    other = unflagged_settings(settings)
    if other:
        commands.append(
            "# the CLI has no flag for: " + ", ".join(other) + " (set them in SupervisedConfig)"
        )
    calibration = card["calibration"]
    per_material = max(1, calibration.get("n_patterns", 0) // max(1, _n_materials(calibration)))
    commands += [
        f"ebsdlake --lake LAKE evaluate {run_id}",
        f"ebsdlake --lake LAKE calibrate {run_id} --patterns-per-material {per_material}",
        f"ebsdlake --lake LAKE model export {run_id} {card['name']}",
    ]
    return commands


def unflagged_settings(settings: dict[str, Any]) -> list[str]:
    """Settings that differ from the defaults and that ``ebsdlake train`` has no flag for."""
    defaults = as_stored_json(dataclasses.asdict(SupervisedConfig()))
    return sorted(
        key
        for key, value in settings.items()
        if key not in TRAIN_FLAGS and key not in RUNTIME_FIELDS and defaults.get(key) != value
    )


def _flat(values: list) -> list:
    """Nested lists as one flat list (``pc_range`` pairs become six numbers)."""
    return [
        item for value in values for item in (_flat(value) if isinstance(value, list) else [value])
    ]


def _symbol(card: dict[str, Any], label: Any) -> str:
    """The symbol of a class label as the card lists it (the label itself when unknown)."""
    symbols = dict(
        zip(map(str, card.get("classes") or []), card.get("symbols") or [], strict=False)
    )
    return symbols.get(str(label), str(label))


def _n_materials(calibration: dict[str, Any]) -> int:
    """Materials the calibration was fitted on."""
    return len(calibration.get("fit_materials") or [])


def card_markdown(card: dict[str, Any]) -> str:
    """The card as text (``card.md``)."""
    accuracy, calibration = card.get("accuracy") or {}, card["calibration"]
    lines = [
        f"# Model {card['name']}",
        "",
        f"Run `{card['run_id']}` ({card['kind']}), label `{card['label']}`, "
        f"classes {', '.join(card['symbols'])}; weights {card['size_mb']} MB; "
        f"ebsdlake {card['ebsdlake_version']}; exported {card['created']}.",
        "",
        "## Measured",
        "",
        f"- held-out accuracy: {headline(card)['accuracy']}",
    ]
    for label, value in (accuracy.get("per_class") or {}).items():
        lines.append(f"  - {_symbol(card, label)} ({label}): {value:.3f}")
    if accuracy.get("per_class"):
        lines.append(f"- confusion matrix (rows true, columns predicted): ![]({CONFUSION_FIGURE})")
    protocol = card.get("protocol") or {}
    if protocol.get("cv_accuracy"):
        cv = protocol["cv_accuracy"]
        lines.append(
            f"- cross-validation accuracy: {cv['mean']:.3f} "
            f"(95% interval {cv['low']:.3f}-{cv['high']:.3f}, {cv['n']} folds)"
        )
    lines += [
        f"- calibration: temperature {calibration['temperature']:.3f}, ECE (15 bins) "
        f"{_num(calibration.get('ece_before'))} -> {_num(calibration.get('ece_after'))} on "
        f"{calibration.get('n_patterns')} patterns of "
        f"{id_list(calibration['fit_materials'], 'calibration.fit_materials')}"
        + (
            f"; on check materials {_num(calibration.get('check_ece_before'))} -> "
            f"{_num(calibration.get('check_ece_after'))}"
            if calibration.get("check_materials")
            else ""
        ),
        f"- uncertain below {calibration['threshold']:.3f}: {calibration.get('rule', '')}",
        "",
        "## Trained on",
        "",
        f"- {len(card['training']['train_ids'])} materials: "
        + id_list(card["training"]["train_ids"], "training.train_ids"),
        f"- held out: {id_list(card['training']['test_ids'], 'training.test_ids')}",
        "- settings: `" + json.dumps(card["training"]["settings"], sort_keys=True) + "`",
        "- reading (pre-processing, detector, input size): `"
        + json.dumps(card["reading"], sort_keys=True)
        + "`",
        "",
        "## Rebuild",
        "",
        "```",
        *card["rebuild"],
        "```",
        "",
    ]
    return "\n".join(lines)


def headline(card: dict[str, Any]) -> dict[str, str]:
    """The card's headline figures as text: held-out accuracy with its 95 % interval over
    materials (and on whole space groups or structure types never trained on, when the build
    held some out), and the ECE after calibration (on the check materials when there were
    some)."""
    accuracy = card.get("accuracy") or {}
    value, interval = accuracy.get("held_out"), accuracy.get("interval_over_materials")
    if value is None:
        shown = "not evaluated"
    else:
        shown = f"{value:.3f}"
        if interval:
            shown += (
                f" (95% interval over {interval['n']} materials "
                f"{interval['low']:.3f}-{interval['high']:.3f})"
            )
    extra = card.get("extra_evaluations") or {}
    for key, what in (("unseen_groups", "space groups"), ("unseen_types", "structure types")):
        unseen = extra.get(key) or {}
        if unseen.get("held_out") is not None:
            shown += f"; unseen {what} {unseen['held_out']:.3f}"
    calibration = card.get("calibration") or {}
    ece = calibration.get("check_ece_after", calibration.get("ece_after"))
    if ece is None:
        ece = calibration.get("ece_after")
    return {"accuracy": shown, "ece": _num(ece)}


def list_models(lake_url: str | None, storage_options: dict | None = None) -> list[dict]:
    """Shipped packages and the lake's runs that carry a card: ``name``, ``where``, ``label``,
    ``classes`` (symbols), ``accuracy``, ``ece``, ``beam_kv`` (trained beam energies). A missing lake lists the shipped ones only."""
    rows = []
    for name in shipped_model_names():
        card_path = SHIPPED_MODELS / name / CARD_FILE
        card = json.loads(card_path.read_text()) if card_path.is_file() else {"name": name}
        rows.append(_row(card, "shipped", name))
    if lake_url:
        from lake import LakeNotFoundError

        try:
            lake = open_lake(lake_url, storage_options)
        except LakeNotFoundError:
            return rows
        for run_id in lake.run_ids():
            run = Run(lake, run_id)
            if run.has(CARD_FILE):
                rows.append(_row(run.get_json(CARD_FILE), "lake run", run_id))
    return rows


def _row(card: dict[str, Any], where: str, name: str) -> dict[str, str]:
    """One ``model ls`` row of a card."""
    figures = headline(card)
    return {
        "name": name,
        "where": where,
        "package": str(card.get("name", name)),
        "label": str(card.get("label", "?")),
        "classes": " ".join(card.get("symbols") or []),
        "accuracy": figures["accuracy"],
        "ece": figures["ece"],
        "beam_kv": "/".join(f"{e:g}" for e in trained_beam_energies(card) or ()) or "?",
    }


def _num(value: Any) -> str:
    """A figure with three decimals, or ``-``."""
    return "-" if value is None else f"{value:.3f}"


def _json_bytes(obj: Any) -> bytes:
    """Indented JSON bytes."""
    return json.dumps(as_stored_json(obj), indent=2, sort_keys=True).encode()


def _version() -> str:
    """The installed ebsdlake version, or ``unknown``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ebsdlake")
    except PackageNotFoundError:
        return "unknown"

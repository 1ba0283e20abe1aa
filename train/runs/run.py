"""A stored training run: ``Run(lake, run_id)`` owns its files, status, settings and results.

A run lives under ``runs/<run_id>/`` of the lake; every byte goes through ``lake`` (Ray Train's
checkpoints too: ``Lake.run_storage``). Its files:

``config.json`` (the full run configuration, including train/test material ids),
``classes.json`` (label values in logit order), ``reading.json`` (how the run reads a pattern:
``train.patterns.reading.PatternReading``), ``metrics.json`` (per-epoch history), ``model.pt``
(the final weights, a torch state dict per network), evaluation and protocol outputs,
``calibration.json`` (``ebsdlake calibrate``) and ``card.json`` (``ebsdlake model export``).

``model.pt`` is written last, so a run with a model is *finished*; a run folder without one is
*unfinished* (interrupted) and is resumed from its last checkpoint when trained again with the
same settings (:meth:`Run.check_settings` refuses other settings before anything is written).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import torch

from lake import Lake, LakeError, LakeNotFoundError
from train.errors import TrainingError, one_line
from train.patterns.errors import PatternError
from train.patterns.reading import PatternReading
from train.run_files import (  # noqa: F401 (the run's files, named here for its callers)
    CALIBRATION_FILE,
    CARD_FILE,
    CLASSES_FILE,
    CONFIG_FILE,
    EVALUATION_FILE,
    METRICS_FILE,
    MODEL_FILE,
    PROTOCOL_FILE,
    READING_FILE,
    TARGET_PREDICTIONS_FILE,
    TRAINING_CURVE_FILE,
)

#: Settings that change where or how robustly a run executes, not what it learns: resuming an
#: interrupted run with other values of these is still the same run.
RUNTIME_SETTINGS = ("config.fault", "config.max_failures", "config.use_gpu", "lake_url")


def open_lake(lake_url: str, storage_options: dict | None = None, mode: str = "r") -> Lake:
    """Open the existing lake at ``lake_url`` (``mode="a"`` or ``"r+"`` to write run files).

    Raises
    ------
    lake.LakeNotFoundError
        No lake at ``lake_url`` ("no lake here ..."): a mistyped URL never creates one.
    """
    existing = "r" if mode == "r" else "r+"  # r+: writes, but never creates a lake
    return Lake.open(lake_url, storage_options=storage_options or {}, mode=existing)


@dataclass
class RunResult:
    """What a finished training run produced.

    Attributes
    ----------
    run_id
        Folder name under ``runs/``.
    classes
        Label values in logit order.
    history
        One dict per epoch (``epoch``, losses, accuracies, ``images_per_s``...).
    train_ids, val_ids
        Materials trained on and validated on.
    """

    run_id: str
    classes: list
    history: list[dict[str, float]]
    train_ids: list[str]
    val_ids: list[str]

    @property
    def final(self) -> dict[str, float]:
        """Metrics of the last epoch."""
        return self.history[-1] if self.history else {}


class Run:
    """One run folder of a lake: its files, status, settings check and results.

    Parameters
    ----------
    lake
        An open ``lake.Lake`` (writable to train, read-only is enough to read).
    run_id
        The folder name under ``runs/``.
    """

    def __init__(self, lake: Lake, run_id: str) -> None:
        self.lake = lake
        self.run_id = run_id

    def __repr__(self) -> str:
        return f"Run({self.lake.url!r}, {self.run_id!r})"

    # ---------------------------------------------------------------- where and what state

    @property
    def folder(self) -> str:
        """URL of the run folder (for messages that say what to remove)."""
        return self.lake.run_location(self.run_id)[0]

    def storage(self) -> tuple[str, Any, str]:
        """Where Ray Train writes this run's checkpoints (``ray.train.RunConfig`` arguments)."""
        return self.lake.run_storage(self.run_id)

    def exists(self) -> bool:
        """Whether the run folder exists."""
        return self.run_id in self.lake.run_ids()

    @property
    def status(self) -> str:
        """``"missing"`` (no folder), ``"finished"`` (has ``model.pt``) or ``"unfinished"``."""
        if not self.exists():
            return "missing"
        return "finished" if self.has(MODEL_FILE) else "unfinished"

    def require(self) -> Run:
        """Return self; a :class:`TrainingError` naming the runs that exist when it does not."""
        if not self.exists():
            raise TrainingError(
                f"run {self.run_id!r} does not exist in {self.lake.url}; "
                f"{existing_runs_hint(self.lake, self.run_id)}"
            )
        return self

    @property
    def state(self) -> str:
        """What ``runs ls`` shows: ``"finished"``; ``"interrupted"`` (has a checkpoint to resume
        from); ``"never trained"`` (stopped before its first checkpoint); ``"missing"``."""
        entries = self.lake.run_entries(self.run_id)
        if not entries:
            return "missing"
        if MODEL_FILE in entries:
            return "finished"
        return (
            "interrupted"
            if any(n.startswith("checkpoint_") for n in entries)
            else ("never trained")
        )

    @property
    def created(self) -> float | None:
        """When the run's oldest file was written (epoch seconds; ``None``: store does not say)."""
        times = [t for t in self.lake.run_entries(self.run_id).values() if t is not None]
        return min(times) if times else None

    def remove(self) -> None:
        """Delete the run folder with its checkpoints (a :class:`TrainingError` if missing)."""
        self.require()
        self.lake.remove_run(self.run_id)

    def refuse_finished(self) -> None:
        """Raise :class:`TrainingError` when the run exists and is finished."""
        if self.status == "finished":
            raise TrainingError(
                f"run {self.run_id!r} already exists in {self.lake.url}; choose another "
                f"--run-id or remove it ({self.folder})"
            )

    # ---------------------------------------------------------------- files

    def has(self, name: str) -> bool:
        """Whether the run folder holds ``name``."""
        return self.lake.has_run_file(self.run_id, name)

    def put_bytes(self, name: str, data: bytes) -> None:
        """Write one file of the run."""
        self.lake.put_run_file(self.run_id, name, data)

    def get_bytes(self, name: str) -> bytes:
        """Read one file of the run; a missing one is a :class:`TrainingError`."""
        try:
            return self.lake.get_run_file(self.run_id, name)
        except (LakeError, FileNotFoundError, KeyError, ValueError) as exc:
            raise TrainingError(f"run {self.run_id!r}: cannot read {name} ({exc})") from None

    def put_json(self, name: str, obj: Any) -> None:
        """Write ``obj`` as indented JSON to the run file ``name``."""
        data = json.dumps(obj, indent=2, sort_keys=True, default=_json_default).encode()
        self.put_bytes(name, data)

    def get_json(self, name: str) -> Any:
        """Read the JSON run file ``name`` (a :class:`TrainingError` if missing or invalid)."""
        return parse_json(self.run_id, name, self.get_bytes(name))

    def put_model(self, state: dict[str, Any]) -> None:
        """Write a dict of state dicts as ``model.pt`` (last: it marks the run finished)."""
        buffer = io.BytesIO()
        torch.save(state, buffer)
        self.put_bytes(MODEL_FILE, buffer.getvalue())

    def model_state(self) -> dict[str, Any]:
        """The run's ``model.pt`` as a dict of CPU state dicts."""
        try:
            data = self.lake.get_run_file(self.run_id, MODEL_FILE)
        except (LakeError, FileNotFoundError, KeyError, ValueError) as exc:
            raise TrainingError(f"run {self.run_id!r}: no trained model ({exc})") from None
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a truncated or foreign file
            raise TrainingError(
                f"run {self.run_id!r}: {MODEL_FILE} is unreadable ({one_line(exc)})"
            ) from None
        if not isinstance(state, dict):
            raise TrainingError(f"run {self.run_id!r}: {MODEL_FILE} holds no dict of state dicts")
        return state

    # ---------------------------------------------------------------- what the run holds

    @property
    def config(self) -> dict[str, Any]:
        """``config.json``: kind, settings (``config``), material ids, lake URL."""
        config = self.get_json(CONFIG_FILE)
        if not isinstance(config, dict):
            raise TrainingError(f"run {self.run_id!r}: {CONFIG_FILE} is not a JSON object")
        return config

    @property
    def kind(self) -> str:
        """``"supervised"`` or ``"mcd"``."""
        return str(self.config.get("kind", "supervised"))

    @property
    def classes(self) -> list:
        """Label values in logit order."""
        classes = self.get_json(CLASSES_FILE)
        if not isinstance(classes, list) or len(classes) < 2:
            raise TrainingError(
                f"run {self.run_id!r}: {CLASSES_FILE} is not a list of two or more labels"
            )
        return classes

    def reading(self) -> PatternReading:
        """How the run reads a pattern (``reading.json``): pre-processing, detector, input size,
        augmentation, label and classes."""
        if not self.has(READING_FILE):
            return self._reading_before_reading_json()
        try:
            return PatternReading.from_dict(
                self.get_json(READING_FILE), f"run {self.run_id!r}: {READING_FILE}"
            )
        except PatternError as exc:
            raise TrainingError(str(exc)) from None

    def _reading_before_reading_json(self) -> PatternReading:
        """A run trained before runs stored ``reading.json``: those always used the default
        pre-processing and the paper's detector at ``detector_shape``, so that is how it reads
        a pattern."""
        from train.run_config import StreamedRunConfig

        settings = self.config.get("config") or {}
        if "preprocess" in settings:
            raise TrainingError(f"run {self.run_id!r}: no {READING_FILE}; train it again")
        known = {f: settings[f] for f in ("label", "image_size", "augment") if f in settings}
        if "detector_shape" in settings:
            known["detector_shape"] = tuple(settings["detector_shape"])
        try:
            return StreamedRunConfig(**known).reading(self.classes)
        except (TypeError, ValueError) as exc:
            raise TrainingError(
                f"run {self.run_id!r}: {CONFIG_FILE} 'config' cannot say how it reads patterns "
                f"({one_line(exc)})"
            ) from None

    def history(self) -> list[dict[str, float]]:
        """Per-epoch metrics of a finished run (``metrics.json``)."""
        metrics = self.get_json(METRICS_FILE)
        if not isinstance(metrics, dict) or not isinstance(metrics.get("history"), list):
            raise TrainingError(f"run {self.run_id!r}: {METRICS_FILE} lacks 'history'")
        return metrics["history"]

    def result(self) -> RunResult:
        """The :class:`RunResult` of a finished run, read back from its files."""
        stored = self.config
        return RunResult(
            self.run_id,
            list(self.classes),
            self.history(),
            list(stored.get("train_ids") or []),
            list(stored.get("val_ids") or []),
        )

    # ---------------------------------------------------------------- settings

    def check_settings(
        self, run_config: dict[str, Any], classes: list | None = None, ignore: tuple = ()
    ) -> str:
        """Check that the run may be trained with ``run_config``; return its status.

        A missing run may be created; an existing one (finished or interrupted) only with the
        same ``config.json`` (and ``classes.json`` when ``classes`` is given), apart from
        :data:`RUNTIME_SETTINGS` and ``ignore``. Nothing is written.

        Returns
        -------
        str
            ``"missing"``, ``"unfinished"`` (resume it) or ``"finished"`` (same settings).

        Raises
        ------
        TrainingError
            The run exists with other settings (naming them), or without a readable config.
        """
        status = self.status
        if status == "missing":
            return status
        remedy = f"choose another --run-id or remove it ({self.folder})"
        try:
            stored = self.lake.get_run_file(self.run_id, CONFIG_FILE)
        except LakeNotFoundError:
            raise TrainingError(
                f"run {self.run_id!r} exists in {self.lake.url} without {CONFIG_FILE}; {remedy}"
            ) from None
        differences = settings_differences(
            parse_json(self.run_id, CONFIG_FILE, stored),
            as_stored_json(run_config),
            RUNTIME_SETTINGS + tuple(ignore),
        )
        if classes is not None and self.get_json(CLASSES_FILE) != as_stored_json(list(classes)):
            differences.append("classes")
        if differences:
            shown = ", ".join(differences[:4]) + (" ..." if len(differences) > 4 else "")
            if status == "finished":
                what = "already exists"
            else:
                what, remedy = "exists unfinished", f"resume it with its own settings, {remedy}"
            raise TrainingError(
                f"run {self.run_id!r} {what} in {self.lake.url} with other settings ({shown}); "
                f"{remedy}"
            )
        return status


def existing_runs_hint(lake: Lake, run_id: str) -> str:
    """``did you mean ...?`` (close ids), else the lake's runs, else that it has none."""
    import difflib

    ids = lake.run_ids()
    if not ids:
        return "the lake has no runs yet (`ebsdlake train` makes one)"
    close = difflib.get_close_matches(run_id, ids, n=5, cutoff=0.6)
    if close:
        return f"did you mean {', '.join(close)}? (`ebsdlake runs ls` lists them)"
    more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
    return f"runs: {', '.join(ids[:5])}{more} (`ebsdlake runs ls`)"


def settings_differences(stored: Any, wanted: Any, ignore: tuple[str, ...] = ()) -> list[str]:
    """What differs between a stored run configuration and a wanted one, one item per key.

    Keys of ``config`` (the training settings) are compared one by one as ``config.<key>``;
    scalars show ``stored -> wanted``, longer values (material lists) just their name.
    """
    if not isinstance(stored, dict) or not isinstance(wanted, dict):
        return [] if stored == wanted else ["the whole configuration"]
    differences = []
    for key in sorted(set(stored) | set(wanted)):
        old, new = stored.get(key), wanted.get(key)
        if key == "config" and isinstance(old, dict) and isinstance(new, dict):
            differences += [
                _shown("config." + name, old.get(name), new.get(name))
                for name in sorted(set(old) | set(new))
                if "config." + name not in ignore and old.get(name) != new.get(name)
            ]
        elif key not in ignore and old != new:
            differences.append(_shown(key, old, new))
    return differences


def _shown(name: str, old: Any, new: Any) -> str:
    """``name old -> new`` for short scalars, else ``name``."""
    if isinstance(old, (list, dict)) or isinstance(new, (list, dict)):
        return name
    return f"{name} {old!r} -> {new!r}"


def as_stored_json(obj: Any) -> Any:
    """``obj`` as it reads back from a run file (tuples as lists, numpy scalars as numbers), to
    compare a configuration with a stored one."""
    return json.loads(json.dumps(obj, sort_keys=True, default=_json_default))


def parse_json(run_id: str, name: str, data: bytes) -> Any:
    """Parse the bytes of the JSON run file ``name`` (a :class:`TrainingError` if invalid)."""
    try:
        return json.loads(data)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise TrainingError(f"run {run_id!r}: {name} is not valid JSON ({one_line(exc)})") from None


def _json_default(obj: Any) -> Any:
    """Make numpy scalars, tuples and paths JSON-serialisable."""
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)

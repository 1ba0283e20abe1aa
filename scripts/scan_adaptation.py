"""Can a shipped model adapt to one scan at test time, without labels?

The shipped cubic model calls 3 of kikuchipy's 9 real Ni patterns Fm-3m per background file and
leaves the rest uncertain; the gap is the domain (docs/RESULTS.md). Two unsupervised routes that
need nothing but the scan itself, measured on the three Ni files and on the model's held-out
simulated materials::

    .venv/bin/python scripts/scan_adaptation.py --model cubic-lab --lake LAKE \\
        --out adaptation.json

- **AdaBN**: every batch-norm layer's statistics re-estimated on the scan's own network inputs
  and mixed with the training ones, ``alpha`` the scan's share (0: the model as shipped). On
  simulations each held-out material plays a one-phase scan: the statistics come from 9 of its
  patterns (a scan's worth), the accuracy from its 100.
- **MCD fine-tuning** (Saito et al. 2018; the paper's domain adaptation): the classifier split
  into a generator and two heads (the second slightly perturbed), fine-tuned by steps A-C of
  ``train.mcd_steps`` on the recipe's training materials (labelled, degraded as in training)
  and the three Ni files (unlabelled), batch norm frozen (a one-phase target's batch statistics
  would erase the classes, as AdaBN shows). Real and simulated calls every ``--check-every``
  steps.

LAKE must hold the model's recipe masters (a ``model build`` lake). Calls use the model's
temperature and threshold, as ``predict``. Writes the JSON and prints one line per setting.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCAN_SIZE = 9
"""Patterns a simulated one-phase 'scan' adapts on (kikuchipy's Ni scan holds 9)."""


def batchnorm_adapted(network: nn.Module, patterns: torch.Tensor, alpha: float) -> nn.Module:
    """A copy of ``network`` whose batch-norm statistics are ``alpha`` x those of ``patterns``
    plus ``1 - alpha`` x the trained ones (AdaBN for ``alpha`` = 1)."""
    adapted = copy.deepcopy(network).float()
    layers = [m for m in adapted.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    trained = [(m.running_mean.clone(), m.running_var.clone()) for m in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a plain average over the forward passes below
        layer.train()
    with torch.no_grad():
        adapted(patterns.float())
    for layer, (mean, var) in zip(layers, trained, strict=True):
        layer.running_mean.mul_(alpha).add_((1 - alpha) * mean)
        layer.running_var.mul_(alpha).add_((1 - alpha) * var)
    return adapted.eval()


def split_for_mcd(classifier: nn.Module, noise: float = 0.01, seed: int = 0) -> tuple:
    """``(generator, head1, head2)`` from a ResNet classifier: the trunk, its ``fc`` and a copy
    of ``fc`` with weights perturbed by ``noise`` (relative) so the heads can part."""
    generator = copy.deepcopy(classifier).float()
    head1 = generator.fc
    generator.fc = nn.Identity()
    head2 = copy.deepcopy(head1)
    generator_rng = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in head2.parameters():
            scale = noise * parameter.abs().mean()
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator_rng))
    return generator, head1, head2


def verdicts(loaded: Any, raw: np.ndarray) -> tuple[dict[str, int], np.ndarray]:
    """Calibrated probabilities of raw softmax outputs and their call counts ('uncertain' below
    the model's threshold), as ``predict`` makes them."""
    probabilities = loaded.calibration.apply(raw) if loaded.calibration else raw
    calls = [
        str(loaded.classes[i]) if row[i] >= loaded.threshold else "uncertain"
        for row, i in zip(probabilities, probabilities.argmax(1), strict=True)
    ]
    return dict(sorted(Counter(calls).items())), probabilities


def scan_inputs(loaded: Any) -> dict[str, torch.Tensor]:
    """kikuchipy's Ni scan in each format, read as ``predict`` reads it for ``loaded``."""
    from train.patterns.sample_scans import kikuchipy_ni_files
    from train.runs.predict import read_as_trained

    return {name: read_as_trained(loaded, path)[2].float() for name, path in
            kikuchipy_ni_files().items()}  # fmt: skip


def real_calls(loaded: Any, softmax_of, scans: dict[str, torch.Tensor]) -> dict[str, dict]:
    """Per Ni file: call counts and mean Fm-3m probability under ``softmax_of(patterns)``."""
    fcc = loaded.classes.index(225)
    found = {}
    for name, patterns in scans.items():
        counts, probabilities = verdicts(loaded, softmax_of(patterns))
        found[name] = {"calls": counts, "mean_p_Fm-3m": float(probabilities[:, fcc].mean())}
    return found


def simulated_by_material(loaded: Any, lake: str, ids: list[str], per_material: int) -> dict:
    """``{material: (patterns, true value)}``: the evaluation's projections of ``ids``."""
    from train.run_config import EVALUATION_SEED_OFFSET
    from train.runs.held_out import held_out_batches

    grouped: dict[str, list] = {}
    batches = held_out_batches(loaded, lake, None, ids, per_material, EVALUATION_SEED_OFFSET)
    for patterns, values, materials in batches:
        for pattern, value, material in zip(patterns, values, materials, strict=True):
            grouped.setdefault(material, []).append((pattern, value))
    return {m: (torch.stack([p for p, _ in items]).float(), items[0][1])
            for m, items in grouped.items()}  # fmt: skip


def softmax_fn(networks: dict[str, nn.Module]):
    """``patterns -> class probabilities (numpy)`` of a run's networks (``{"model": ...}`` or an
    MCD generator and heads), as inference combines them, without gradients."""
    from train.runs.inference import ClassProbabilities

    combined = ClassProbabilities(networks)

    def run(patterns: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return combined(patterns).numpy()

    return run


def adabn(loaded: Any, scans: dict, simulated: dict, alphas: list[float]) -> list[dict]:
    """AdaBN at each ``alpha``: the Ni calls (statistics from each file) and the held-out
    accuracy (statistics from 9 patterns of each material)."""
    network = loaded.model.networks["model"]
    rows = []
    for alpha in alphas:
        real = {}
        for name, patterns in scans.items():
            adapted = batchnorm_adapted(network, patterns, alpha)
            real |= real_calls(loaded, softmax_fn({"model": adapted}), {name: patterns})
        right = []
        for patterns, value in simulated.values():
            adapted = batchnorm_adapted(network, patterns[:SCAN_SIZE], alpha)
            predicted = softmax_fn({"model": adapted})(patterns).argmax(1)
            right.append(float(np.mean([loaded.classes[i] == value for i in predicted])))
        rows.append({"alpha": alpha, "real": real, "held_out_accuracy": float(np.mean(right))})
        print(f"AdaBN alpha {alpha:g}: held-out {rows[-1]['held_out_accuracy']:.3f}; "
              + "; ".join(f"{k} {v['calls']}" for k, v in real.items()), flush=True)  # fmt: skip
    return rows


def mcd_finetune(loaded: Any, card: dict, lake: str, scans: dict, simulated: dict,
                 lr: float, steps: int, check_every: int) -> list[dict]:  # fmt: skip
    """MCD fine-tuning at learning rate ``lr`` (Adam) for ``steps`` mini-batches; the Ni calls
    and held-out accuracy every ``check_every`` steps (step 0: the model as shipped)."""
    from train.mcd_steps import make_optimizers, mcd_step
    from train.runs.held_out import held_out_batches

    generator, head1, head2 = split_for_mcd(loaded.model.networks["model"])
    optimizers = make_optimizers(generator, head1, head2, lr)
    target = torch.cat(list(scans.values()))
    networks = (generator, head1, head2)

    softmax_of = softmax_fn({"generator": generator, "head1": head1, "head2": head2})

    def check(step: int, losses: dict) -> dict:
        for network in networks:
            network.eval()
        right = [np.mean([loaded.classes[i] == value for i in softmax_of(p).argmax(1)])
                 for p, value in simulated.values()]  # fmt: skip
        row = {"lr": lr, "step": step, "losses": losses, "held_out_accuracy": float(np.mean(right)),
               "real": real_calls(loaded, softmax_of, scans)}  # fmt: skip
        print(f"MCD lr {lr:g} step {step}: held-out {row['held_out_accuracy']:.3f}; "
              + "; ".join(f"{k} {v['calls']}" for k, v in row["real"].items()), flush=True)  # fmt: skip
        return row

    rows, step, epoch, losses = [check(0, {})], 0, 0, {}
    train_ids = list(card["protocol"]["train_ids"])
    while step < steps:
        epoch += 1
        source = held_out_batches(loaded, lake, None, train_ids, 2, 1000 + epoch,
                                  augment=loaded.reading.augment)  # fmt: skip
        for patterns, values, _ in source:
            labels = torch.tensor([loaded.classes.index(v) for v in values])
            draw = torch.Generator().manual_seed(step)
            batch = target[torch.randint(len(target), (len(labels),), generator=draw)]
            for network in networks:
                network.train()
            for layer in generator.modules():
                if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                    layer.eval()
            losses = mcd_step(generator, head1, head2, optimizers, patterns.float(), labels, batch)
            step += 1
            if step % check_every == 0 or step == steps:
                rows.append(check(step, losses))
            if step >= steps:
                break
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cubic-lab", help="package folder or shipped name")
    parser.add_argument("--lake", required=True, help="a lake holding the recipe's masters")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--mcd-lr", type=float, nargs="*", default=[2e-5, 2e-4])
    parser.add_argument("--mcd-steps", type=int, default=150)
    parser.add_argument("--check-every", type=int, default=50)
    parser.add_argument("--per-material", type=int, default=100, help="held-out patterns each")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args(argv)

    from train.runs.inference import load_model
    from train.shipped import model_folder

    torch.manual_seed(0)
    loaded = load_model(args.model)
    card = json.loads((model_folder(args.model) / "card.json").read_text())
    scans = scan_inputs(loaded)
    ids = list(card["protocol"]["test_ids"])
    simulated = simulated_by_material(loaded, args.lake, ids, args.per_material)
    record = {"model": str(args.model), "held_out_materials": len(simulated),
              "adabn": adabn(loaded, scans, simulated, args.alphas), "mcd": []}  # fmt: skip
    for lr in args.mcd_lr:
        record["mcd"] += mcd_finetune(loaded, card, args.lake, scans, simulated, lr,
                                      args.mcd_steps, args.check_every)  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Can a distance in the network's feature space flag phases outside a model's classes?

A classifier of five cubic groups calls a hexagonal pattern one of the five. A common remedy
needs no retraining: measure how far a pattern's penultimate-layer features (the 512 numbers
the final layer reads) lie from those of the training patterns, and withhold the call beyond a
distance chosen on held-out simulations. It is only useful if real patterns of an in-class
phase stay inside while simulated out-of-class phases fall outside. This script measures both,
for three distances: the Mahalanobis distance to the nearest class mean (shared covariance),
the cosine distance to the 10th nearest training pattern, and the logits' energy::

    .venv/bin/python scripts/feature_distance_check.py --lake LAKE --model cubic-lab

LAKE holds the model's training and held-out materials and the out-of-class ones (the
``cubic-lab`` build's lake: ``cif-Mg-*``, ``cif-TiO2-*``). Real patterns: kikuchipy's Ni scan in
its three formats, read as ``predict`` reads them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

QUANTILES = (0.80, 0.90, 0.95)
"""Thresholds: these quantiles of the held-out in-class patterns' distances (so 20, 10 and 5 %
of the in-class simulations are flagged by construction)."""
NEIGHBOUR = 10
"""The k of the k-th nearest training pattern (cosine distance)."""


@dataclass(frozen=True)
class MahalanobisFit:
    """Class means and one shared precision matrix of training features."""

    means: np.ndarray
    precision: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, shrink: float = 1e-3) -> MahalanobisFit:
        """Fit on (N, D) ``features`` with (N,) ``labels``; the covariance is shrunk towards
        its mean variance by ``shrink`` so it inverts with few samples per dimension."""
        values = sorted(set(labels.tolist()))
        means = np.stack([features[labels == v].mean(0) for v in values])
        centred = features - means[np.searchsorted(values, labels)]
        covariance = np.cov(centred.T)
        covariance += shrink * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
        return cls(means, np.linalg.inv(covariance))

    def distance(self, features: np.ndarray) -> np.ndarray:
        """(N,) squared Mahalanobis distance to the nearest class mean."""
        d = features[:, None, :] - self.means[None]
        return np.einsum("nci,ij,ncj->nc", d, self.precision, d).min(1)


def knn_distance(reference: np.ndarray, k: int = NEIGHBOUR) -> Callable[[np.ndarray], np.ndarray]:
    """The cosine distance of features to their ``k``-th nearest ``reference`` row."""
    unit = reference / np.linalg.norm(reference, axis=1, keepdims=True)

    def distance(features: np.ndarray) -> np.ndarray:
        similarity = features / np.linalg.norm(features, axis=1, keepdims=True) @ unit.T
        return 1.0 - np.sort(similarity, 1)[:, -k]

    return distance


def energy(logits: np.ndarray) -> np.ndarray:
    """Negative log-sum-exp of the logits: higher is further from the training data."""
    top = logits.max(1, keepdims=True)
    return -(top[:, 0] + np.log(np.exp(logits - top).sum(1)))


def features_and_logits(net: torch.nn.Module, patterns: torch.Tensor) -> tuple[np.ndarray, ...]:
    """(N, D) inputs of the network's final layer ``fc`` and (N, C) logits."""
    seen: list[torch.Tensor] = []
    hook = net.fc.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0]))
    try:
        with torch.no_grad():
            logits = torch.cat([net(part) for part in torch.split(patterns, 64)])
    finally:
        hook.remove()
    return torch.cat(seen).numpy(), logits.numpy()


def main(argv: list[str] | None = None) -> int:
    from train.patterns.sample_scans import kikuchipy_ni_files
    from train.runs.held_out import held_out_batches
    from train.runs.inference import load_model
    from train.runs.predict import read_as_trained
    from train.shipped import model_folder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", required=True)
    parser.add_argument("--model", default="cubic-lab", help="shipped name or package folder")
    parser.add_argument(
        "--out-of-class",
        nargs="+",
        default=None,
        metavar="ID",
        help="material ids outside the classes (default: the card's)",
    )
    parser.add_argument("--per-material", type=int, default=12)
    parser.add_argument(
        "--degraded",
        action="store_true",
        help="render every simulated set with the model's training degradations",
    )
    args = parser.parse_args(argv)  # fmt: skip

    loaded = load_model(args.model)
    net = loaded.model.networks["model"]
    card = json.loads((model_folder(args.model) / "card.json").read_text())
    training = card["training"]
    outside = args.out_of_class or [row["source"] for row in card.get("out_of_class", [])
                                    if row["source"] != "noise"]  # fmt: skip

    augment = None
    if args.degraded:
        from train.supervised import SupervisedConfig

        augment = SupervisedConfig(**loaded.settings).training_augment()

    def simulated(ids: list[str], per: int, offset: int) -> tuple[np.ndarray, ...]:
        batches = held_out_batches(loaded, args.lake, None, ids, per, offset, augment)
        parts = [
            (*features_and_logits(net, patterns), np.asarray(values))
            for patterns, values, _ in batches
        ]
        return tuple(np.concatenate(column) for column in zip(*parts, strict=True))

    train_f, _, train_y = simulated(training["train_ids"], args.per_material, 40_000)
    held_f, held_l, _ = simulated(training["test_ids"], 2 * args.per_material, 41_000)
    sets = {"held-out (in class)": (held_f, held_l)}
    for material in outside:
        sets[material] = simulated([material], 100, 42_000)[:2]
    for name, path in kikuchipy_ni_files().items():
        prepared = read_as_trained(loaded, path)[2]  # as ``predict`` reads the file
        sets[f"real Ni {name}"] = features_and_logits(net, prepared)

    mahalanobis = MahalanobisFit.fit(train_f, train_y)
    nearest = knn_distance(train_f)
    scores = {
        "Mahalanobis": lambda f, _l: mahalanobis.distance(f),
        f"cosine, {NEIGHBOUR}th neighbour": lambda f, _l: nearest(f),
        "energy": lambda _f, logits: energy(logits),
    }
    print(
        f"model {args.model}{', degraded simulations' if args.degraded else ''}; share "
        "flagged as outside, threshold at held-out quantile q"
    )
    for score_name, score in scores.items():
        scored = {name: score(f, logits) for name, (f, logits) in sets.items()}
        reference = scored["held-out (in class)"]
        for q in QUANTILES:
            cut = np.quantile(reference, q)
            shares = ", ".join(f"{name} {np.mean(s > cut):.2f}" for name, s in scored.items())
            print(f"{score_name}, q {q:.2f}: {shares}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

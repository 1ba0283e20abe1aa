"""The three optimisation steps of Maximum Classifier Discrepancy (Saito et al. 2018).

Per mini-batch, as Yan et al. 2025 used it:

(A) :func:`step_source` - generator and both heads minimise the source cross-entropy;
(B) :func:`step_heads` - the heads minimise source cross-entropy minus the target discrepancy,
    generator frozen (its features computed without gradients, its optimiser not stepped);
(C) :func:`step_generator` - the generator minimises the target discrepancy ``n`` times (paper:
    4), heads frozen (their optimiser is not stepped).

The discrepancy is the mean L1 distance between the two heads' softmax outputs. Functions take
the networks and optimisers explicitly and return float losses, so a test can check exactly which
parameters each step changes.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class MCDOptimizers:
    """One Adam optimiser for the generator, one for both heads (paper: lr 2e-4)."""

    generator: torch.optim.Optimizer
    heads: torch.optim.Optimizer

    def zero_grad(self) -> None:
        """Clear the gradients of every network."""
        self.generator.zero_grad(set_to_none=True)
        self.heads.zero_grad(set_to_none=True)


def make_optimizers(generator: nn.Module, head1: nn.Module, head2: nn.Module, lr: float = 2e-4):
    """Build the Adam optimisers of MCD (learning rate in 1/step units, paper 2e-4)."""
    heads = list(head1.parameters()) + list(head2.parameters())
    return MCDOptimizers(
        generator=torch.optim.Adam(generator.parameters(), lr=lr),
        heads=torch.optim.Adam(heads, lr=lr),
    )


def discrepancy(logits1: torch.Tensor, logits2: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of the two heads' class probabilities (L1 per sample / C)."""
    return (F.softmax(logits1.float(), dim=1) - F.softmax(logits2.float(), dim=1)).abs().mean()


def _context(precision) -> contextlib.AbstractContextManager:
    """A fresh precision context from the factory ``precision`` (e.g. bf16 autocast), or none."""
    return precision() if precision is not None else contextlib.nullcontext()


def _two_head_ce(head1, head2, features, labels) -> torch.Tensor:
    """Sum of the two heads' cross-entropies on labelled features."""
    return F.cross_entropy(head1(features).float(), labels) + F.cross_entropy(
        head2(features).float(), labels
    )


def step_source(
    generator, head1, head2, optimizers: MCDOptimizers, source, labels, precision=None
) -> float:
    """Step A: generator and heads minimise the source cross-entropy; returns the loss."""
    with _context(precision):
        loss = _two_head_ce(head1, head2, generator(source), labels)
    optimizers.zero_grad()
    loss.backward()
    optimizers.generator.step()
    optimizers.heads.step()
    optimizers.zero_grad()
    return float(loss.detach())


def step_heads(
    generator, head1, head2, optimizers: MCDOptimizers, source, labels, target, precision=None
) -> float:
    """Step B: heads minimise source CE minus target discrepancy, generator frozen."""
    with _context(precision):
        with torch.no_grad():
            source_features = generator(source)
            target_features = generator(target)
        ce = _two_head_ce(head1, head2, source_features, labels)
        loss = ce - discrepancy(head1(target_features), head2(target_features))
    optimizers.zero_grad()
    loss.backward()
    optimizers.heads.step()
    optimizers.zero_grad()
    return float(loss.detach())


def step_generator(
    generator, head1, head2, optimizers: MCDOptimizers, target, repeats: int = 4, precision=None
) -> float:
    """Step C: the generator minimises the target discrepancy ``repeats`` times, heads frozen.

    Returns the discrepancy of the last repeat.
    """
    value = 0.0
    for _ in range(repeats):
        with _context(precision):
            features = generator(target)
            loss = discrepancy(head1(features), head2(features))
        optimizers.zero_grad()
        loss.backward()
        optimizers.generator.step()
        optimizers.zero_grad()
        value = float(loss.detach())
    return value


def mcd_step(
    generator,
    head1,
    head2,
    optimizers: MCDOptimizers,
    source: torch.Tensor,
    labels: torch.Tensor,
    target: torch.Tensor,
    repeats: int = 4,
    precision=None,
) -> dict[str, float]:
    """Run steps A, B and C on one source batch and one target batch.

    Returns
    -------
    dict
        ``source_ce`` (A), ``heads_loss`` (B), ``discrepancy`` (C, last repeat).
    """
    return {
        "source_ce": step_source(generator, head1, head2, optimizers, source, labels, precision),
        "heads_loss": step_heads(
            generator, head1, head2, optimizers, source, labels, target, precision
        ),
        "discrepancy": step_generator(
            generator, head1, head2, optimizers, target, repeats, precision
        ),
    }

"""MCD's three steps change exactly the parameters the method says they change."""

from __future__ import annotations

import torch

from train.mcd_steps import (
    MCDOptimizers,
    discrepancy,
    make_optimizers,
    mcd_step,
    step_generator,
    step_heads,
    step_source,
)
from train.models import build_mcd_networks


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    nets = build_mcd_networks(3, "resnet10")
    optimizers = make_optimizers(nets.generator, nets.head1, nets.head2, lr=1e-2)
    source = torch.randn(6, 1, 32, 32)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    target = torch.randn(6, 1, 32, 32) * 2 + 1
    return nets, optimizers, source, labels, target


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def _changed(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(p, before[n]) for n, p in module.named_parameters())


def _all_changed(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return all(not torch.equal(p, before[n]) for n, p in module.named_parameters())


def _run_and_report(step) -> dict[str, bool]:
    nets, optimizers, source, labels, target = _setup()
    before = {name: _snapshot(m) for name, m in nets.modules().items()}
    step(nets, optimizers, source, labels, target)
    return {name: _changed(m, before[name]) for name, m in nets.modules().items()}


def test_step_a_updates_generator_and_both_heads():
    changed = _run_and_report(
        lambda n, o, s, y, t: step_source(n.generator, n.head1, n.head2, o, s, y)
    )
    assert changed == {"generator": True, "head1": True, "head2": True}


def test_step_b_updates_only_the_heads():
    changed = _run_and_report(
        lambda n, o, s, y, t: step_heads(n.generator, n.head1, n.head2, o, s, y, t)
    )
    assert changed == {"generator": False, "head1": True, "head2": True}


def test_step_c_updates_only_the_generator():
    changed = _run_and_report(
        lambda n, o, s, y, t: step_generator(n.generator, n.head1, n.head2, o, t, repeats=4)
    )
    assert changed == {"generator": True, "head1": False, "head2": False}


def test_step_b_raises_the_discrepancy_and_step_c_lowers_it():
    nets, _, source, labels, target = _setup(1)
    optimizers = MCDOptimizers(
        generator=torch.optim.Adam(nets.generator.parameters(), lr=1e-5),
        heads=torch.optim.Adam([*nets.head1.parameters(), *nets.head2.parameters()], lr=1e-2),
    )
    nets.generator.eval()  # fixed batch-norm statistics make the two measurements comparable

    def measure() -> float:
        with torch.no_grad():
            features = nets.generator(target)
            return float(discrepancy(nets.head1(features), nets.head2(features)))

    start = measure()
    for _ in range(3):
        step_heads(nets.generator, nets.head1, nets.head2, optimizers, source, labels, target)
    after_heads = measure()
    step_generator(nets.generator, nets.head1, nets.head2, optimizers, target, repeats=4)
    after_generator = measure()
    assert after_heads > start
    assert after_generator < after_heads


def test_generator_repeats_take_n_optimiser_steps():
    nets, optimizers, source, labels, target = _setup()
    step_generator(nets.generator, nets.head1, nets.head2, optimizers, target, repeats=4)
    steps = {int(s["step"]) for s in optimizers.generator.state.values()}
    assert steps == {4}
    assert optimizers.heads.state == {}


def test_discrepancy_is_zero_for_equal_heads_and_positive_otherwise():
    logits = torch.randn(4, 3)
    assert float(discrepancy(logits, logits)) == 0.0
    assert float(discrepancy(logits, -logits)) > 0.0


def test_one_mcd_step_reports_the_three_losses():
    nets, optimizers, source, labels, target = _setup()
    losses = mcd_step(nets.generator, nets.head1, nets.head2, optimizers, source, labels, target)
    assert set(losses) == {"source_ce", "heads_loss", "discrepancy"}
    assert losses["source_ce"] > 0 and losses["discrepancy"] >= 0
    assert all(s["step"] == 5 for s in optimizers.generator.state.values())  # A + 4 x C
    assert all(s["step"] == 2 for s in optimizers.heads.state.values())  # A + B

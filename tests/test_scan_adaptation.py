"""scripts/scan_adaptation.py: AdaBN mixes a scan's batch statistics into the trained ones, and
the MCD split starts from the classifier it came from."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))


def _trained_like_classifier() -> nn.Module:
    """A small ResNet18 classifier with non-trivial batch-norm statistics, in eval mode."""
    from train.models import build_classifier

    torch.manual_seed(0)
    classifier = build_classifier(5)
    classifier.train()
    with torch.no_grad():
        classifier(torch.randn(8, 1, 32, 32) * 2 + 1)
    return classifier.eval()


def test_alpha_zero_is_the_model_and_alpha_one_the_scan_s_statistics():
    from scan_adaptation import batchnorm_adapted

    classifier = _trained_like_classifier()
    scan = torch.randn(6, 1, 32, 32) * 0.5 - 1
    with torch.no_grad():
        before = classifier(scan)
        unchanged = batchnorm_adapted(classifier, scan, 0.0)(scan)
        adapted = batchnorm_adapted(classifier, scan, 1.0)
        first_conv = classifier.conv1(scan)
    assert torch.allclose(before, unchanged, atol=1e-5)
    expected_mean = first_conv.mean(dim=(0, 2, 3))
    assert torch.allclose(adapted.bn1.running_mean, expected_mean, atol=1e-5)
    assert not torch.allclose(classifier.bn1.running_mean, expected_mean, atol=1e-3)
    assert not torch.allclose(adapted(scan), before, atol=1e-3)  # the statistics moved the calls


def test_the_mcd_split_starts_as_the_classifier_with_heads_apart():
    from scan_adaptation import split_for_mcd

    classifier = _trained_like_classifier()
    generator, head1, head2 = split_for_mcd(classifier, noise=0.01)
    patterns = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        logits = classifier(patterns)
        features = generator(patterns)
        first, second = head1(features), head2(features)
    assert torch.allclose(first, logits, atol=1e-5)
    assert not torch.equal(first, second)  # step B has a discrepancy to grow
    gap = (torch.softmax(first, 1) - torch.softmax(second, 1)).abs().max()
    assert gap < 0.05
    assert isinstance(classifier.fc, nn.Linear)  # the loaded model itself is untouched

"""Networks: one-channel ResNets, local ImageNet weights, label targets."""

from __future__ import annotations

import pytest
import torch
from torchvision.models import resnet18

from lake import Lake
from train.errors import TrainingError
from train.models import build_backbone, build_classifier, build_mcd_networks
from train.targets import label_attribute

pytest_plugins = ("training_fixtures",)


def test_classifier_takes_one_channel_and_gives_one_logit_per_class():
    model = build_classifier(5, "resnet18").eval()
    assert model.conv1.in_channels == 1
    with torch.no_grad():
        assert model(torch.randn(2, 1, 64, 64)).shape == (2, 5)


def test_local_imagenet_weights_are_summed_into_the_grey_stem(tmp_path):
    reference = resnet18(weights=None)
    path = tmp_path / "imagenet.pth"
    torch.save(reference.state_dict(), path)
    model = build_classifier(3, "resnet18", weights_path=path)
    expected = reference.conv1.weight.sum(dim=1, keepdim=True)
    assert torch.allclose(model.conv1.weight, expected)
    assert torch.equal(model.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)
    assert model.fc.out_features == 3


def test_weights_for_another_architecture_are_refused(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(resnet18(weights=None).state_dict(), path)
    with pytest.raises(TrainingError, match="do not match"):
        build_backbone("resnet50", path)


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(TrainingError, match="no such file"):
        build_classifier(3, weights_path=tmp_path / "absent.pth")


def test_mcd_networks_are_a_resnet50_generator_and_two_linear_heads():
    nets = build_mcd_networks(4)
    assert nets.generator.num_features == 2048
    assert isinstance(nets.head1, torch.nn.Linear) and nets.head1.out_features == 4
    assert nets.head1 is not nets.head2


def test_label_targets_map_to_structure_attributes():
    assert label_attribute("disordered_spacegroup") == "disordered_spacegroup_number"
    assert label_attribute("spacegroup") == "spacegroup_number"
    assert label_attribute("bravais_lattice") == "bravais_lattice"
    with pytest.raises(TrainingError, match="unknown"):
        label_attribute("colour")


def test_a_scoped_label_keeps_its_values_and_reads_every_other_one_as_outside(training_lake):
    from train.patterns.materials import material_labels
    from train.targets import OUTSIDE, class_symbol, label_scope, scoped_label, scoped_value

    label = label_attribute("disordered_spacegroup@225,229")
    assert label == "disordered_spacegroup_number@225,229"
    assert label_scope(label) == ("disordered_spacegroup_number", (225, 229))
    assert label_scope("disordered_laue_class@m-3m,m-3") == (
        "disordered_laue_class",
        ("m-3m", "m-3"),
    )
    assert label_scope("spacegroup_number") == ("spacegroup_number", None)
    assert [scoped_value(v, (225, 229)) for v in (225, 227)] == [225, OUTSIDE]
    assert class_symbol(label, 225) == "Fm-3m" and class_symbol(label, OUTSIDE) == "outside"
    lake = Lake.open(training_lake.url, storage_options=training_lake.storage_options)
    ids = ["t-cu", "t-si", "t-fe"]  # Fm-3m, Fd-3m, Im-3m
    assert material_labels(lake, ids, label) == [225, OUTSIDE, 229]
    with pytest.raises(TrainingError, match="label scope"):
        scoped_label("spacegroup", ["225", OUTSIDE])
    with pytest.raises(TrainingError, match="spacegroup_number values are numbers"):
        label_attribute("spacegroup@Fm-3m")
    with pytest.raises(TrainingError, match="label target 'colour'"):
        label_attribute("colour@1,2")

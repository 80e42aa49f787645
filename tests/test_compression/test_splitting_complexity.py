"""Splitting backbones into units, and FLOPs / parameter counting."""
import pytest
import torch
from mmengine.config import Config
from mmpretrain.models.backbones import LeNet5, MobileNetV2, ResNet, ResNet_CIFAR, ResNetV1c
from torch import nn

from mmstructkd.compression import BlockwiseCompressor, complexity, model_complexity, split_backbone
from mmstructkd.registry import MODELS, build_own
from tests.conftest import CONFIG_DIR


@pytest.mark.parametrize('backbone,names', [
    (lambda: MobileNetV2(widen_factor=0.25, out_indices=(6, 7)),
     ['conv1'] + [f'layer{i}' for i in range(1, 8)] + ['conv2']),
    (lambda: ResNet(18, base_channels=8, stem_channels=8),
     ['conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2', 'layer3', 'layer4']),
    (lambda: ResNet(50, base_channels=8, stem_channels=8, num_stages=3, strides=(1, 2, 2),
                    dilations=(1, 1, 1), out_indices=(2, )),
     ['conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2', 'layer3']),
    (lambda: ResNet_CIFAR(18, stem_channels=8, base_channels=8),
     ['conv1', 'bn1', 'relu', 'layer1', 'layer2', 'layer3', 'layer4']),
], ids=['mobilenet_v2', 'resnet18', 'resnet50-3stages', 'resnet_cifar'])
def test_the_split_rebuilds_the_teacher_exactly(backbone, names):
    torch.manual_seed(0)
    teacher = backbone()
    teacher.eval()
    split = split_backbone(teacher)
    assert [u.name for u in split.units] == names
    assert split.searchable_names == [n for n in names if n.startswith(('layer', 'conv2'))]
    student = build_own(MODELS, split.backbone_cfg())
    student.eval()
    # Same state-dict keys (loads strictly) and the same function.
    student.load_state_dict(teacher.state_dict(), strict=True)
    x = torch.randn(2, 3, 40, 40)
    outs_t, outs_s = teacher(x), student(x)
    assert len(outs_t) == len(outs_s)
    for t, s in zip(outs_t, outs_s):
        torch.testing.assert_close(s, t)


def test_unsupported_backbones_name_themselves_and_the_supported_ones():
    with pytest.raises(TypeError, match=r'LeNet5 backbone.*MobileNetV2, ResNet, ResNet_CIFAR'):
        split_backbone(LeNet5(num_classes=3))
    with pytest.raises(TypeError, match='ResNetV1c backbone'):
        split_backbone(ResNetV1c(depth=18))
    with pytest.raises(TypeError, match='deep_stem=False'):
        split_backbone(ResNet(18, deep_stem=True))


def test_the_compressor_refuses_an_unsupported_backbone_clearly():
    cfg = Config.fromfile(f'{CONFIG_DIR}/tiny_cls_student.py')
    cfg.model.backbone = dict(type='LeNet5', num_classes=-1)
    with pytest.raises(TypeError, match='cannot split a LeNet5 backbone'):
        BlockwiseCompressor(cfg, None, settings=dict(input_size=32))


def test_complexity_of_tiny_layers_matches_hand_counts():
    # Conv 3->4, 3x3, padding 1 on 5x5: 4*3*3*3 multiply-adds per output pixel, 25 pixels.
    assert complexity(nn.Conv2d(3, 4, 3, padding=1), (3, 5, 5)) == dict(
        flops=4 * 3 * 3 * 3 * 25, params=4 * 3 * 3 * 3 + 4)
    # Stride 2 on 8x8 -> 4x4 outputs; no bias.
    assert complexity(nn.Conv2d(3, 8, 3, stride=2, padding=1, bias=False), (3, 8, 8)) == dict(
        flops=8 * 3 * 9 * 16, params=8 * 3 * 9)
    # Depthwise 3x3 on 6 channels, 4x4: one 3x3 filter per channel.
    assert complexity(nn.Conv2d(6, 6, 3, padding=1, groups=6, bias=False), (6, 4, 4)) == dict(
        flops=6 * 9 * 16, params=6 * 9)


def test_a_model_is_the_sum_of_its_counted_parts():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))
    counts = model_complexity(model, (3, 6, 6))
    assert counts['0'] == dict(flops=4 * 27 * 36, params=4 * 27 + 4)
    assert counts['2'] == dict(flops=2 * 4 * 36, params=2 * 4 + 2)
    assert counts[''] == dict(flops=4 * 27 * 36 + 2 * 4 * 36, params=4 * 27 + 4 + 2 * 4 + 2)
    assert model.training  # counting does not leave the model in eval mode

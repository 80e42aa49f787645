import pytest
import torch
import torchvision
from mmpretrain.models.backbones import MobileNetV2

from mmstructkd.utils.mobilenet_v2_converter import convert_torchvision_mobilenet_v2


def test_converted_weights_load_strictly_and_compute_the_same_features():
    torch.manual_seed(0)
    tv = torchvision.models.mobilenet_v2().eval()  # random weights: no download
    converted = convert_torchvision_mobilenet_v2(tv.state_dict(), prefix='')
    mm = MobileNetV2(out_indices=(7, ))
    mm.load_state_dict(converted, strict=True)
    mm.eval()  # (mmpretrain's train() returns None, so no chaining)
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(mm(x)[0], tv.features(x), atol=1e-5, rtol=1e-4)
    with_head = convert_torchvision_mobilenet_v2(tv.state_dict(), with_head=True)
    assert torch.equal(with_head['head.fc.weight'], tv.classifier[1].weight)
    assert all(k.startswith(('backbone.', 'head.')) for k in with_head)


def test_mmdet_layout_loads_strictly_into_mmdets_mobilenet_v2_and_computes_the_same():
    from mmdet.models.backbones import MobileNetV2 as MMDetMobileNetV2
    torch.manual_seed(0)
    tv = torchvision.models.mobilenet_v2().eval()
    converted = convert_torchvision_mobilenet_v2(tv.state_dict(), prefix='', layout='mmdet')
    mm = MMDetMobileNetV2(out_indices=(7, ))
    mm.load_state_dict(converted, strict=True)
    mm.eval()
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(mm(x)[0], tv.features(x), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match='layout must be one of'):
        convert_torchvision_mobilenet_v2(tv.state_dict(), layout='mmcv')

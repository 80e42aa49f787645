"""A teacher checkpoint that does not fit lists every kind of difference, with counts."""
import pytest
import torch

from mmstructkd.utils import load_teacher_checkpoint
from tests.conftest import build_tiny_model as build


def test_missing_unexpected_and_mismatched_keys_are_all_listed(tmp_path):
    teacher = build('tiny_seg_teacher')
    state = teacher.state_dict()
    backbone = [k for k in state if k.startswith('backbone.')]
    for key in backbone[:7]:  # 7 missing
        del state[key]
    state['neck.weight'] = torch.zeros(1)  # 1 unexpected
    state['decode_head.conv_seg.weight'] = torch.zeros(2, 32, 1, 1)  # another class count
    path = str(tmp_path / 't.pth')
    torch.save(dict(state_dict=state), path)
    with pytest.raises(ValueError) as error:
        load_teacher_checkpoint(build('tiny_seg_teacher'), path)
    message = str(error.value)
    assert f'missing keys: [{", ".join(backbone[:5])}, ... (7 in all)]' in message
    assert 'unexpected keys: [neck.weight]' in message
    assert ('shape mismatch (checkpoint vs model): [decode_head.conv_seg.weight: checkpoint '
            '(2, 32, 1, 1) vs model (4, 32, 1, 1)]') in message
    assert 'trained with this num_classes' in message

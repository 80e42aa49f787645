import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

from mmstructkd.utils import load_teacher_checkpoint
from tests.conftest import CONFIG_DIR


def build(name):
    cfg = Config.fromfile(osp.join(CONFIG_DIR, f'{name}.py'))
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(cfg.model)


def test_matching_checkpoint_loads_on_cpu(tmp_path):
    teacher, source = build('tiny_seg_teacher'), build('tiny_seg_teacher')
    path = str(tmp_path / 't.pth')
    torch.save(dict(state_dict={f'module.{k}': v for k, v in source.state_dict().items()}),
               path)
    load_teacher_checkpoint(teacher, path)
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, source.state_dict()[k])


def test_checkpoint_of_another_model_is_refused(tmp_path):
    path = str(tmp_path / 'student.pth')
    torch.save(dict(state_dict=build('tiny_seg_student').state_dict()), path)
    with pytest.raises(ValueError, match='shape mismatch.*Is it the checkpoint of this teacher'):
        load_teacher_checkpoint(build('tiny_seg_teacher'), path)


def test_missing_keys_are_errors_unless_not_strict(tmp_path):
    teacher = build('tiny_seg_teacher')
    state = teacher.state_dict()
    del state['decode_head.conv_seg.weight']
    state['extra.weight'] = torch.zeros(1)
    path = str(tmp_path / 't.pth')
    torch.save(dict(state_dict=state), path)
    with pytest.raises(ValueError, match=r'missing keys: \[decode_head.conv_seg.weight\]; '
                       r'unexpected keys: \[extra.weight\].*teacher_ckpt_strict=False'):
        load_teacher_checkpoint(build('tiny_seg_teacher'), path)
    load_teacher_checkpoint(build('tiny_seg_teacher'), path, strict=False)


def test_missing_file_and_distiller_checkpoint_have_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='teacher checkpoint "nope.pth" does not exist'):
        load_teacher_checkpoint(build('tiny_seg_teacher'), 'nope.pth')
    path = str(tmp_path / 'distiller.pth')
    torch.save(dict(state_dict={'student.w': torch.zeros(1), 'teacher.w': torch.zeros(1)}), path)
    with pytest.raises(ValueError, match='export_student.py'):
        load_teacher_checkpoint(build('tiny_seg_teacher'), path)


def test_arbitrary_pickled_objects_are_still_refused(tmp_path):
    """Allowing mmengine's globals must not switch weights_only safety off."""
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, payload=Config(dict(a=1))), path)
    with pytest.raises(Exception, match='weights_only|Unsupported global'):
        load_teacher_checkpoint(build('tiny_seg_teacher'), path)


class _GetattrPayload:
    """Pickles as getattr(HistoryBuffer, name), as mmengine's statistics methods do."""

    def __init__(self, name):
        self.name = name

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return getattr, (HistoryBuffer, self.name)


def test_getattr_in_a_checkpoint_reaches_only_history_buffer_statistics(tmp_path):
    from mmengine.logging import HistoryBuffer
    path = str(tmp_path / 'ok.pth')
    torch.save(dict(stat=_GetattrPayload('mean')), path)
    assert torch.load(path, weights_only=True)['stat'] is HistoryBuffer.mean
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(stat=_GetattrPayload('__init__')), path)
    with pytest.raises(Exception, match='allows only the HistoryBuffer statistics'):
        torch.load(path, weights_only=True)

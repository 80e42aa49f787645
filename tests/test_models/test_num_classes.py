"""One class count for student, teacher and critic: the distiller's ``num_classes`` and the
critic's input channels read off the teacher."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

from mmstructkd.utils.config_utils import apply_num_classes, set_num_classes
from tests.conftest import CONFIG_DIR
from tests.conftest import build_tiny_model as build


def test_distiller_num_classes_reaches_student_and_cfg_path_teacher():
    model = build('tiny_seg_distill', num_classes=7)
    # The teacher comes from a cfg_path whose file says 4 classes.
    assert model.student.decode_head.conv_seg.out_channels == 7
    assert model.teacher.decode_head.conv_seg.out_channels == 7
    assert model.student.decode_head.num_classes == model.teacher.decode_head.num_classes == 7
    inputs = torch.rand(1, 3, 64, 64)
    assert model(inputs, mode='tensor').shape[1] == 7


def test_distiller_without_num_classes_builds_as_configured():
    model = build('tiny_seg_distill')
    assert model.num_classes is None
    assert model.teacher.decode_head.num_classes == model.student.decode_head.num_classes == 4


def test_critic_channels_follow_the_teacher_map():
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'tiny_seg_adversarial.py'))
    cfg.model.discriminator.pop('num_classes')  # left to the distiller
    cfg.model.num_classes = 3
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    assert model.discriminator.num_classes == 3
    assert model.discriminator.body[0].in_channels == 3
    # Without a class count change it is the teacher's configured one.
    cfg.model.num_classes = None
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    assert model.discriminator.num_classes == 4


def test_critic_channels_from_a_method_recorder_and_from_a_connector():
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'tiny_seg_adversarial.py'))
    cfg.model.discriminator.pop('num_classes')
    cfg.model.teacher_recorders.head = dict(type='MethodOutputs', source='decode_head.forward')
    cfg.model.adversarial_mapping.teacher = dict(from_student=False, recorder='head')
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(copy.deepcopy(cfg.model))
    assert model.discriminator.num_classes == 4  # BaseDecodeHead.out_channels
    cfg.model.connectors = dict(up=dict(type='ConvConnector', in_channels=4, out_channels=6))
    cfg.model.adversarial_mapping.teacher = dict(from_student=False, recorder='logits',
                                                 connector='up')
    cfg.model.adversarial_mapping.student = dict(from_student=True, recorder='logits',
                                                 connector='up')
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg.model)
    assert model.discriminator.num_classes == 6


def test_critic_channels_that_cannot_be_read_are_an_error():
    cfg = Config.fromfile(osp.join(CONFIG_DIR, 'tiny_seg_adversarial.py'))
    cfg.model.discriminator.pop('num_classes')
    cfg.model.adversarial_mapping.teacher = dict(from_student=False, recorder='feat')
    cfg.model.teacher_recorders.feat = dict(type='ModuleInputs', source='decode_head.conv_seg')
    with DefaultScope.overwrite_default_scope('mmseg'), \
            pytest.raises(ValueError, match='num_classes=<channels of that map>'):
        MODELS.build(cfg.model)


def test_critic_built_alone_needs_num_classes():
    from mmstructkd.models.discriminators import StructKDDiscriminator
    with pytest.raises(ValueError, match='positive int'):
        StructKDDiscriminator()


def test_set_num_classes_sets_every_head_and_refuses_foreign_class_weights():
    cfg = dict(decode_head=dict(num_classes=11, loss_decode=dict(class_weight=None)),
               auxiliary_head=[dict(num_classes=11), dict(num_classes=11)],
               rpn_head=dict(num_classes=1))
    changed = set_num_classes(cfg, 2)
    assert changed == ['decode_head.num_classes', 'auxiliary_head.0.num_classes',
                       'auxiliary_head.1.num_classes']
    assert cfg['rpn_head']['num_classes'] == 1  # class-agnostic proposals
    weighted = dict(decode_head=dict(num_classes=11, loss_decode=dict(class_weight=[1.0] * 11)))
    with pytest.raises(ValueError, match='decode_head.loss_decode.class_weight has 11 weights'):
        set_num_classes(weighted, 2, 'teacher')
    # mmdet's softmax heads weight the background as well (num_classes + 1): still the old list
    with pytest.raises(ValueError, match='class_weight has 4 weights'):
        set_num_classes(dict(bbox_head=dict(num_classes=3, loss_cls=dict(class_weight=[1.] * 4))),
                        2)
    # weights of the class count the config is set to stay
    kept = dict(bbox_head=dict(num_classes=2, loss_cls=dict(class_weight=[1.] * 3)))
    assert set_num_classes(kept, 2) == []
    assert len(kept['bbox_head']['loss_cls']['class_weight']) == 3


def test_apply_num_classes_keeps_a_spec_that_already_matches():
    spec = dict(cfg_path=osp.join(CONFIG_DIR, 'tiny_seg_teacher.py'))
    assert apply_num_classes(spec, 4, 'teacher') is spec  # teacher-cache fingerprints stay
    assert apply_num_classes(spec, None, 'teacher') is spec
    changed = apply_num_classes(spec, 2, 'teacher')
    assert changed['decode_head']['num_classes'] == 2 and 'cfg_path' not in changed

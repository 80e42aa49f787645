"""STKDMixup outside mmpretrain's ClsDataPreprocessor: a clear error at build or first use
(mmseg's preprocessor used to fail deep in its forward: "'list' object is not callable")."""
import pytest
import torch

from mmstructkd.engine import SafeRunner
from mmstructkd.models.batch_augments import STKDMixup
from mmstructkd.utils.model_checks import check_batch_augment_placement
from tests.conftest import build_tiny_distiller as build
from tests.conftest import load_config, seg_inputs


@pytest.mark.parametrize('augments', [[dict(type='STKDMixup', alpha=1.0)],
                                      dict(type='mmpretrain.STKDMixup')])
def test_stkd_mixup_in_a_segmentation_preprocessor_is_refused_at_build(augments, data_roots,
                                                                      tmp_path):
    cfg = load_config('tiny_seg_distill', data_roots['seg'], str(tmp_path / 'work'),
                      **{'model.teacher_ckpt': None})
    cfg.model.student.data_preprocessor.batch_augments = augments
    with pytest.raises(ValueError, match=r'SegDataPreProcessor \("(student\.)?data_preprocessor"'
                       r'\) has STKDMixup in its batch_augments\. STKDMixup is an mmpretrain '
                       r'batch augment.*ClsDataPreprocessor'):
        SafeRunner.from_cfg(cfg)


def test_stkd_mixup_called_with_data_samples_names_its_place():
    data = build().data_preprocessor(seg_inputs(), True)
    with pytest.raises(TypeError, match=r'STKDMixup got \(Tensor, list\), not \(images, '
                       r'one-hot scores\).*ClsDataPreprocessor'):
        STKDMixup()(data['inputs'], data['data_samples'])


def test_stkd_mixup_in_a_classification_preprocessor_passes(data_roots, tmp_path):
    from mmengine.registry import MODELS, DefaultScope
    cfg = load_config('tiny_cls_stkd', data_roots['cls'], str(tmp_path / 'work'))
    cfg.model.teacher_ckpt = None
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    check_batch_augment_placement(model)
    scores = torch.eye(4)[[0, 1, 2, 3]]
    mixed, _ = STKDMixup()(torch.randn(4, 3, 8, 8), scores)
    assert mixed.shape == (4, 3, 8, 8)

import torch
from mmengine.model import ImgDataPreprocessor

from mmstructkd.models.distillers.teacher_inputs import TeacherInputAdapter


def preprocess(pp, raw):
    return pp(dict(inputs=list(raw)), False)['inputs']


def test_teacher_gets_its_own_normalisation():
    raw = torch.randint(0, 256, (2, 3, 4, 5)).float()
    student = ImgDataPreprocessor(mean=[100., 110., 120.], std=[50., 60., 70.], bgr_to_rgb=True)
    teacher = ImgDataPreprocessor(mean=[1., 2., 3.], std=[2., 3., 4.])
    adapter = TeacherInputAdapter(student, teacher)
    assert not adapter.identity and adapter.flip
    converted = adapter(preprocess(student, raw))
    torch.testing.assert_close(converted, preprocess(teacher, raw))
    # Derived buffers never enter checkpoints.
    assert adapter.state_dict() == {}


def test_same_normalisation_is_the_identity():
    pp = ImgDataPreprocessor(mean=[1., 2., 3.], std=[2., 3., 4.], bgr_to_rgb=True)
    adapter = TeacherInputAdapter(pp, ImgDataPreprocessor(mean=[1., 2., 3.], std=[2., 3., 4.],
                                                          bgr_to_rgb=True))
    x = torch.randn(1, 3, 2, 2)
    assert adapter.identity and adapter(x) is x

"""Distiller stages: the records they add to a step, and the mapping checks at build time."""
import pytest
import torch

from mmstructkd.models import PixelWiseLoss, stack_seg_labels
from mmstructkd.models.ops.forward_until import forward_until
from tests.conftest import build_tiny_distiller as build
from tests.conftest import seg_inputs

LOGITS = dict(preds_S=dict(from_student=True, recorder='logits'),
              preds_T=dict(from_student=False, recorder='logits'))


def pixel_loss(ignore_index=3, **mapping):
    """The tiny seg distiller with a pixel-wise loss whose ignored label is ``ignore_index``."""
    # 'image_area': the sum over the kept pixels / (H * W), so the mask changes the value
    return dict(distill_losses=dict(loss_pixel=dict(type='PixelWiseLoss', normalize='image_area',
                                                    ignore_index=ignore_index)),
                loss_forward_mappings=dict(loss_pixel=dict(LOGITS, **mapping)))


def test_a_stage_record_reaches_the_loss_that_maps_it():
    # The labels SegLabels outputs decide which pixels the loss ignores: the distiller's value
    # is the loss on the recorded logits with the batch's own label maps.
    # ignore 255: the padding of the 32 x 32 images to 64 x 64 (3 of the 2 x 2 map's pixels)
    model = build(distill_stages=dict(labels=dict(type='SegLabels')),
                  **pixel_loss(255, gt_sem_seg=dict(from_stage='labels', output='gt_sem_seg')))
    model.train()
    logits = {}
    for side in ('student', 'teacher'):
        getattr(model, side).decode_head.conv_seg.register_forward_hook(
            lambda m, a, out, side=side: logits.__setitem__(side, out.detach()))
    data = model.data_preprocessor(seg_inputs(), True)
    losses = model(**data, mode='loss')
    labels = stack_seg_labels(data['data_samples'])
    assert labels.shape == (2, 64, 64) and (labels == 255).any()  # padded to the size divisor
    expected = PixelWiseLoss(ignore_index=255, normalize='image_area')(
        logits['student'], logits['teacher'], labels)
    unmasked = PixelWiseLoss(ignore_index=None, normalize='image_area')(
        logits['student'], logits['teacher'])
    assert losses['distill.loss_pixel'].item() == pytest.approx(expected.item(), rel=1e-5)
    assert expected.item() != pytest.approx(unmasked.item(), rel=1e-3)  # the mask mattered


def test_an_ignore_index_without_labels_names_the_stage():
    model = build(**pixel_loss())
    model.train()
    with pytest.raises(ValueError, match=r"PixelWiseLoss\(ignore_index=3\) needs the labels: "
                       r"add distill_stages=dict\(labels=dict\(type='SegLabels'\)\)"):
        model(**model.data_preprocessor(seg_inputs(), True), mode='loss')


@pytest.mark.parametrize('stages, mapping, message', [
    (None, dict(from_stage='labels', output='gt_sem_seg'),  # no such stage
     r'no stage "labels" runs before it; distill_stages defines \[\]'),
    (dict(labels=dict(type='SegLabels')), dict(from_stage='labels', output='labels'),
     r'stage "labels" \(SegLabels\) has no output "labels"; it outputs \[\'gt_sem_seg\'\]'),
    (dict(labels=dict(type='SegLabels')), dict(from_stage='labels', output='gt_sem_seg',
                                               recorder='logits'),
     r'a stage record is dict\(from_stage=NAME, output=NAME\)'),
])
def test_bad_stage_mappings_are_refused_at_build(stages, mapping, message):
    with pytest.raises(ValueError, match=message):
        build(distill_stages=stages, **pixel_loss(gt_sem_seg=mapping))


def test_a_stage_reads_only_the_stages_before_it():
    stages = dict(first=dict(type='Cls2DetStage'), second=dict(type='SegLabels'))
    later = dict(first=dict(head_inputs=dict(from_stage='second', output='gt_sem_seg')))
    with pytest.raises(ValueError, match=r'stage_forward_mappings\["first"\]\["head_inputs"\]: '
                       r'no stage "second" runs before it'):
        build(distill_stages=stages, stage_forward_mappings=later)
    bad = dict(first=dict(step_extra=dict(from_stage='second', output='gt_sem_seg')))
    with pytest.raises(ValueError, match=r'stage_forward_mappings\["first"\]\["step_extra"\]: '
                       r'Cls2DetStage.forward has no argument "step_extra"'):
        build(distill_stages=stages, stage_forward_mappings=bad)
    with pytest.raises(ValueError, match=r'stage_forward_mappings name stages that are not in '
                       r"distill_stages: \['third'\]"):
        build(distill_stages=stages, stage_forward_mappings=dict(third={}))


def test_forward_until_stops_after_the_call_that_completes_the_work():
    layers = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Identity(), torch.nn.Identity())
    ran = []
    for i, layer in enumerate(layers):
        layer.register_forward_hook(lambda m, a, out, i=i: ran.append(i))
    stopped, out = forward_until(lambda: layers(torch.ones(1)), [layers[1]], lambda: len(ran) == 2)
    assert stopped and out is None and ran == [0, 1]  # layer 2 never ran
    ran.clear()
    stopped, out = forward_until(lambda: layers(torch.ones(1)), [layers[1]], lambda: False)
    assert not stopped and torch.equal(out, torch.ones(1)) and ran == [0, 1, 2]
    assert len(layers[1]._forward_hooks) == 1  # the stop hooks are gone, the recording stays

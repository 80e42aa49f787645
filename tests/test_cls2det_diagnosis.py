"""The checks of benchmarks/cls2det_diagnosis.py: how soft the teacher's targets are, and how
often a detector labels the cells it finds with the right class."""
import math

import pytest
import torch

from benchmarks import cls2det_diagnosis as diag


def test_target_stats_match_hand_computed_values():
    # class 0: logits (ln 3, 0) -> p = (3/4, 1/4) at tau 1; at tau 2 (sqrt 3, 1) / (sqrt 3 + 1)
    # class 1: one sample predicted as class 0 (top-1 0 %)
    logits = torch.tensor([[math.log(3.), 0.], [math.log(3.), 0.], [1., 0.]])
    labels = torch.tensor([0, 0, 1])
    stats = diag.target_stats(logits, labels, taus=[1.0, 2.0], num_classes=2)
    assert stats[0]['count'] == 2 and stats[0]['top1'] == pytest.approx(100.0)
    assert stats[0]['tau1']['p_top'] == pytest.approx(0.75)
    assert stats[0]['tau1']['entropy'] == pytest.approx(-(0.75 * math.log(0.75) +
                                                          0.25 * math.log(0.25)))
    p = math.sqrt(3) / (math.sqrt(3) + 1)
    assert stats[0]['tau2']['p_top'] == pytest.approx(p)
    assert stats[1]['top1'] == pytest.approx(0.0)
    assert stats[1]['tau1']['p_top'] == pytest.approx(math.e / (math.e + 1))


def test_recognition_of_found_counts_found_cells_and_the_best_boxs_class():
    gts = [dict(image_id=1, bbox=[0, 0, 10, 10], category_id=1),
           dict(image_id=1, bbox=[20, 20, 10, 10], category_id=2),
           dict(image_id=2, bbox=[0, 0, 10, 10], category_id=2),
           dict(image_id=2, bbox=[50, 50, 4, 4], category_id=1)]  # missed
    dets = [
        # gt 0: two hits, the higher-scoring one right
        dict(image_id=1, bbox=[0, 0, 10, 10], category_id=1, score=0.9),
        dict(image_id=1, bbox=[1, 1, 10, 10], category_id=2, score=0.5),
        # gt 1: found only by a box of the wrong class (IoU 81 / 100)
        dict(image_id=1, bbox=[21, 21, 9, 9], category_id=1, score=0.4),
        # gt 2: the right class overlaps too little (IoU 25 / 100), the wrong one enough (90 / 100)
        dict(image_id=2, bbox=[0, 0, 5, 5], category_id=2, score=0.99),
        dict(image_id=2, bbox=[0, 0, 10, 9], category_id=1, score=0.3),
    ]
    counts = diag.recognition_of_found(gts, dets)
    assert counts[1] == dict(total=2, found=1, correct=1)
    assert counts[2] == dict(total=2, found=2, correct=0)


def test_box_iou_of_coco_boxes():
    iou = diag.box_iou_xywh(torch.tensor([[0., 0., 10., 10.]]),
                            torch.tensor([[5., 0., 10., 10.], [20., 20., 1., 1.]]))
    assert iou[0].tolist() == pytest.approx([50 / 150, 0.0])

"""The held-out evaluation of the BCCD benchmarks (benchmarks/bccd_test_split.py): which
weights it tests, and the detector config it tests them with."""
import pytest

from benchmarks import bccd_test_split

REVIEWKD_BCCD = ('configs/reviewkd/reviewkd_retinanet-mnv2-fpn128-gn_retinanet-mnv2-w0.5-'
                 'fpn64-slim_1xb8-24e_bccd-320x240.py')


def test_final_student_weights_prefers_the_distilled_student(tmp_path):
    (tmp_path / 'epoch_24.pth').write_bytes(b'')
    assert bccd_test_split.final_student_weights(str(tmp_path), 24).endswith('/epoch_24.pth')
    (tmp_path / 'epoch_24_student.pth').write_bytes(b'')  # a distiller's run has both
    assert bccd_test_split.final_student_weights(
        str(tmp_path), 24).endswith('/epoch_24_student.pth')
    with pytest.raises(FileNotFoundError, match='epoch_48_student.pth nor epoch_48.pth'):
        bccd_test_split.final_student_weights(str(tmp_path), 48)


def test_student_test_config_tests_the_student_alone_on_the_split(tmp_path):
    cfg = bccd_test_split.student_test_config(REVIEWKD_BCCD, 'w.pth', '/data/bccd',
                                              str(tmp_path), split='test')
    assert cfg.model.type == 'RetinaNet'  # the distiller's student, not the distiller
    assert cfg.model.neck.out_channels == 64
    assert cfg.custom_hooks == []
    assert cfg.test_dataloader.dataset.data_root == '/data/bccd/'
    assert cfg.test_dataloader.dataset.ann_file == 'annotations/instances_test.json'
    assert cfg.test_evaluator.ann_file == '/data/bccd/annotations/instances_test.json'
    assert cfg.load_from == 'w.pth'


def test_shared_runs_reuse_another_benchmarks_test_metrics(tmp_path):
    import json
    other = dict(runs=[dict(variant='student', seed=0, metrics={'coco/bbox_mAP': 0.389}),
                       dict(variant='reviewkd', seed=0, metrics={'coco/bbox_mAP': 0.433})])
    (tmp_path / 'reviewkd_bccd_test.json').write_text(json.dumps(other))
    own = dict(runs=[dict(variant='student', seed=0, metrics={'coco/bbox_mAP': 0.1})])
    (tmp_path / 'cls2det_bccd_test.json').write_text(json.dumps(own))  # its own: never reused
    camvid = dict(runs=[dict(variant='student', seed=0, metrics={'mIoU': 42.0}),
                        dict(variant='student', seed=1)])  # another benchmark's 'student'
    (tmp_path / 'structkd_camvid_test.json').write_text(json.dumps(camvid))
    found = bccd_test_split.shared_test_metrics(str(tmp_path),
                                                str(tmp_path / 'cls2det_bccd.json'))
    assert found == {('student', 0): {'coco/bbox_mAP': 0.389}}  # a distilled run is not shared


def test_the_headline_is_the_variant_val_chose():
    assert bccd_test_split.headline_variant(dict(method='rec+loc', best_variant='rec')) == 'rec'
    # a benchmark with one distilled variant names no best_variant
    assert bccd_test_split.headline_variant(dict(method='reviewkd')) == 'reviewkd'


def test_kept_test_metrics_are_reused_only_for_the_same_weights(tmp_path):
    import json
    summary = str(tmp_path / 'cls2det_bccd.json')
    run = dict(name='cls2det_rec_24e_seed0', metrics={'coco/bbox_mAP': 0.41})
    assert bccd_test_split.kept_test_metrics(summary, run) is None  # never tested
    path = bccd_test_split.kept_test_metrics_path(summary, run['name'])
    assert path == str(tmp_path / 'cls2det_bccd_runs' / 'test_split' /
                       'cls2det_rec_24e_seed0.json')
    (tmp_path / 'cls2det_bccd_runs' / 'test_split').mkdir(parents=True)
    with open(path, 'w') as f:
        json.dump(dict(val_metrics={'coco/bbox_mAP': 0.41},
                       test_metrics={'coco/bbox_mAP': 0.38}), f)
    assert bccd_test_split.kept_test_metrics(summary, run) == {'coco/bbox_mAP': 0.38}
    # the run was trained again (other val metrics): its old test metrics are not its own
    retrained = dict(run, metrics={'coco/bbox_mAP': 0.43})
    assert bccd_test_split.kept_test_metrics(summary, retrained) is None

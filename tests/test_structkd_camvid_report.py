"""The CamVid StructKD summary (``benchmarks/structkd_camvid.report``): paired gains computed
seed by seed, an interim summary (variants still training) marked incomplete with its missing
gains as JSON ``null`` (strict JSON: no ``NaN``), and the last printed line of the issue."""
import argparse
import json

import pytest

from benchmarks import structkd_camvid as bench

CLASSES = ('Sky', 'Pole')


def finished_run(miou: float, seed: int) -> dict:
    return dict(mIoU=miou, seed=seed, train_time_s=100.0,
                per_class_iou={'Sky': miou + 1.0, 'Pole': None},
                logged={'loss': dict(first=1.0, last=0.5),
                        'student.decode.loss_ce': dict(first=0.8, last=0.4)})


def strict_json(path) -> dict:
    def refuse(constant):
        raise ValueError(f'not strict JSON: {constant}')

    with open(path) as f:
        return json.loads(f.read(), parse_constant=refuse)


@pytest.fixture
def runs():
    # student 40/42/41 (spread 2), +pixel 45/44/46, cwd 50/51/49
    values = {'student': (40.0, 42.0, 41.0), '+pixel': (45.0, 44.0, 46.0),
              'cwd': (50.0, 51.0, 49.0)}
    return {(v, s): finished_run(x, s) for v, xs in values.items() for s, x in enumerate(xs)}


def test_interim_summary_is_strict_json_with_paired_gains(runs, tmp_path, capsys):
    args = argparse.Namespace(results=str(tmp_path / 'structkd_camvid.json'), student_iters=12,
                              num_views=2, teacher_iters=40, no_teacher_cache=False,
                              teacher_config='teacher.py')
    teacher = dict(mIoU=60.0, train_time_s=5.0, per_class_iou={'Sky': 90.0, 'Pole': 10.0},
                   checkpoint='/tmp/teacher.pth')
    bench.report(args, teacher, runs)
    summary = strict_json(args.results)
    assert summary['complete'] is False
    assert '+pixel+pair' in summary['missing_variants']
    # paired: (45-40, 44-42, 46-41) = (5, 2, 5); cwd (10, 9, 8)
    assert summary['paired']['pixel'] == dict(mean=4.0, min=2.0, max=5.0,
                                              per_seed=[5.0, 2.0, 5.0])
    assert summary['cwd_gain'] == 9.0
    assert summary['pair_gain'] is None and summary['holistic_gain'] is None
    assert summary['spread'] == 2.0
    assert summary['best_variant'] == '+pixel' and summary['gain'] == 4.0
    assert summary['variants']['cwd']['per_class_iou'] == {'Sky': 51.0, 'Pole': 0.0}
    assert 'checkpoint' not in summary['teacher']
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last == ('miou_gain=+4.00 spread=2.00 pair_gain=n/a holistic_gain=n/a '
                    'cwd_gain=+9.00')


def test_run_names_are_file_names():
    assert bench.run_name('+pixel+pair(paper)', 1200, 8, 2) == 'pixel-pair-paper_1200it_v8_seed2'
    assert bench.run_name('+pixel[1]+pair', 1200, 8, 0) == 'pixel-1-pair_1200it_v8_seed0'
    assert len({bench.variant_tag(v) for v in bench.VARIANTS}) == len(bench.VARIANTS)


def test_test_split_pairs_seeds_and_reports_val_beside(runs, tmp_path, capsys):
    from benchmarks import structkd_camvid_test_split as test_split
    summary = dict(best_variant='+pixel', complete=False,
                   variants={v: dict(mean=m) for v, m in
                             (('student', 41.0), ('+pixel', 45.0), ('cwd', 50.0))},
                   paired={'pixel': dict(mean=4.0), 'cwd': dict(mean=9.0)})
    # test mIoU = val - 3 for every run but cwd seed 2 (-5): cwd's paired gain (10, 9, 6)
    tested = {k: dict(r, mIoU=r['mIoU'] - (5.0 if k == ('cwd', 2) else 3.0))
              for k, r in runs.items()}
    args = argparse.Namespace(summary=str(tmp_path / 'structkd_camvid.json'))
    test_split.report(args, summary, tested, num_images=233)
    out = strict_json(tmp_path / 'structkd_camvid_test.json')
    assert out['paired']['cwd'] == dict(mean=8.33, min=6.0, max=10.0, per_seed=[10.0, 9.0, 6.0])
    assert out['gain'] == 4.0 and out['best_variant'] == '+pixel'
    assert out['pair_gain'] is None
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        'test_miou_gain=+4.00 spread=2.00 pair_gain=n/a holistic_gain=n/a cwd_gain=+8.33')


def test_kept_teacher_is_found_by_its_sha(tmp_path):
    """The test split and the gradient diagnostic take the summary's teacher, not the last
    file by name: a 400-iteration teacher sorts after the 2000-iteration one."""
    from benchmarks.lib.common import sha256_of
    runs_dir = tmp_path / 'structkd_camvid_runs'
    runs_dir.mkdir()
    (runs_dir / 'teacher_a_2000it.pth').write_bytes(b'the teacher')
    (runs_dir / 'teacher_a_400it.pth').write_bytes(b'another teacher')
    summary_path = str(tmp_path / 'structkd_camvid.json')
    want = sha256_of(str(runs_dir / 'teacher_a_2000it.pth'))
    found = bench.kept_teacher(summary_path, dict(teacher=dict(weights_sha256=want)))
    assert found.endswith('teacher_a_2000it.pth')
    with pytest.raises(FileNotFoundError, match='restore them'):
        bench.kept_teacher(summary_path, dict(teacher=dict(weights_sha256='0' * 64)))


def test_sweep_point_at_the_variants_own_weight_is_its_run(runs, tmp_path, monkeypatch):
    """--sweep-pair 0.5 (the official lambda_pa) is +pixel[1]+pair itself: nothing trains."""
    runs[('+pixel[1]', 0)] = finished_run(50.0, 0)
    runs[('+pixel[1]+pair', 0)] = finished_run(50.5, 0)
    runs[('+pixel[1]+pair+holistic', 0)] = finished_run(50.0, 0)
    trained = []
    monkeypatch.setattr(bench, 'run', lambda name, *a, **k: trained.append(name) or
                        finished_run(51.25, 0))
    args = argparse.Namespace(sweep_seed=0, sweep_pixel=[], sweep_adv=[2], sweep_pair=[0.5, 8],
                              student_iters=12, num_views=2, report=False)
    out = bench.run_sweeps(args, 'teacher@x', dict(checkpoint='t.pth'), 'pre.pth', runs)
    rows = out['sweep_pair']['rows']
    assert [(r['weight'], r['mIoU'], r['gain']) for r in rows] == [(0.5, 50.5, 0.5),
                                                                    (8, 51.25, 1.25)]
    # each sweep's runs name its weight (lambda_ho: adv, not the config key's first part)
    assert trained == ['sweep_pixel-1-pair_loss_pair8_12it_v2_seed0',
                       'sweep_pixel-1-pair-holistic_adv2_12it_v2_seed0']

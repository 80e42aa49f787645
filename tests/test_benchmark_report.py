"""Benchmarks spread over sessions: ``--report`` tabulates the runs finished so far and trains
nothing; a teacher whose checkpoint is gone (a new machine: results are committed, checkpoints
are not) is trained again only when a distilled run still has to train."""
import argparse
import json
import os
import os.path as osp

import pytest
from mmengine.config import Config

from benchmarks.lib import common


def write_result(results_dir, name, value, seed):
    with open(osp.join(results_dir, f'{name}.json'), 'w') as f:
        json.dump(dict(name=name, config=f'{name}.py', seed=seed, train_time_s=10.0 * (seed + 1),
                       metrics={'acc': value}), f)


@pytest.fixture
def finished(tmp_path):
    """A teacher and 3 of the 4 student runs (variant b, seed 1 unfinished)."""
    runs = tmp_path / 'runs'
    runs.mkdir()
    write_result(runs, 'teacher', 0.9, 0)
    for variant, seed, value in (('a', 0, 0.50), ('a', 1, 0.54), ('b', 0, 0.61)):
        write_result(runs, f'{variant}_seed{seed}', value, seed)
    return tmp_path


def report(tmp_path, variants=('a', 'b'), seeds=(0, 1), configs=None):
    args = argparse.Namespace(seeds=list(seeds), variants=list(variants), report=True,
                              results=str(tmp_path / 'summary.json'))
    runs = str(tmp_path / 'runs')

    def run(name):  # the benchmarks' train functions all end in run_config
        return common.run_config(name, None, str(tmp_path / 'work'), runs)

    return common.compare(
        args, configs or dict(a='a.py', b='b.py'), method='b', baseline='a', last_key='acc_gain',
        metric='acc', metric_name='acc', scale=100.0, settings={},
        train_teacher=lambda args: ('ckpt', run('teacher')),
        train_student=lambda v, c, s, *_: run(f'{v}_seed{s}'),
        header=lambda teacher: 'header')


def test_report_tabulates_finished_runs_and_trains_nothing(finished, capsys):
    summary = report(finished)
    out = capsys.readouterr().out
    assert 'PARTIAL: 3 of 4 runs finished' in out
    assert '| b | 61.00 | 61.00 | - | 10 |' in out
    assert '| a | 52.00 | 50.00 | 54.00 | 15 |' in out
    assert summary['complete'] is False
    assert summary['gain'] == pytest.approx(9.0)
    assert summary['spread'] == pytest.approx(4.0)
    assert {(r['variant'], r['seed']) for r in summary['runs']} == {('a', 0), ('a', 1), ('b', 0)}
    with open(finished / 'summary.json') as f:
        assert json.load(f)['complete'] is False
    assert not common._report_only  # the switch does not outlive the call


def test_report_complete_when_every_run_finished(finished):
    write_result(finished / 'runs', 'b_seed1', 0.65, 1)
    summary = report(finished)
    assert summary['complete'] is True
    assert summary['gain'] == pytest.approx(11.0)


def test_complete_counts_requested_variants_with_the_headline_pair(finished):
    write_result(finished / 'runs', 'b_seed1', 0.65, 1)
    configs = dict(a='a.py', b='b.py', ablation='ablation.py')  # an opt-in variant, never run
    summary = report(finished, variants=('a', 'b'), configs=configs)
    assert summary['complete'] is True
    assert summary['gain_over_ablation'] is None
    assert summary['not_requested'] == ['ablation']
    # a run of one variant alone (as bccd_parallel.sh makes) is no finished comparison
    assert report(finished, variants=('b', ), configs=configs)['complete'] is False


def test_report_without_finished_teacher_says_what_to_run(finished):
    (finished / 'runs' / 'teacher.json').unlink()
    with pytest.raises(SystemExit, match='teacher run "teacher" is not finished'):
        report(finished)


class FakeRunner:
    """Stands in for mmengine's Runner in :func:`common.run_config`: 'training' writes the
    checkpoint the config names and records that it trained."""
    trained = []

    def __init__(self, cfg):
        self.cfg, self.iter = cfg, 3
        self.message_hub = argparse.Namespace(
            get_scalar=lambda key: argparse.Namespace(data=([1.0, 1.0, 1.0], )))

    @classmethod
    def from_cfg(cls, cfg):
        return cls(cfg)

    def train(self):
        FakeRunner.trained.append(osp.basename(self.cfg.work_dir))
        os.makedirs(self.cfg.work_dir, exist_ok=True)
        open(osp.join(self.cfg.work_dir, 'epoch_1.pth'), 'w').close()

    def val(self):
        return {'acc': 0.7}


def lazy_teacher_compare(tmp_path, monkeypatch, **flags):
    """compare() over a teacher that loads from ``work/teacher/epoch_1.pth`` and a distilled
    variant ``b`` whose config loads that checkpoint (variant ``a``: no teacher)."""
    monkeypatch.setattr(common, 'Runner', FakeRunner)
    FakeRunner.trained = []
    work, runs = str(tmp_path / 'work'), str(tmp_path / 'runs')
    ckpt = osp.join(work, 'teacher', 'epoch_1.pth')

    def cfg(model):
        return Config(dict(model=model))

    def train_teacher(args):
        result = common.run_config('teacher', cfg(dict(type='T')), work, runs,
                                   reuse_needs='epoch_1.pth')
        return ckpt, result

    def train_student(variant, config, seed, args, teacher_ckpt, runs_dir):
        model = dict(type='S') if variant == 'a' else dict(type='D', teacher_ckpt=teacher_ckpt)
        return common.run_config(f'{variant}_seed{seed}', cfg(model), work, runs)

    args = argparse.Namespace(seeds=[0, 1], variants=['a', 'b'],
                              results=str(tmp_path / 'summary.json'), **flags)
    return common.compare(args, dict(a='a.py', b='b.py'), method='b', baseline='a',
                          last_key='acc_gain', metric='acc', metric_name='acc', settings={},
                          train_teacher=train_teacher, train_student=train_student,
                          header=lambda teacher: 'header')


def test_finished_benchmark_needs_no_teacher_checkpoint(finished, monkeypatch):
    # a new machine: every result committed, no checkpoint; nothing trains
    write_result(finished / 'runs', 'b_seed1', 0.65, 1)
    summary = lazy_teacher_compare(finished, monkeypatch)
    assert FakeRunner.trained == []
    assert summary['complete'] is True


def test_teacher_is_trained_when_a_distilled_run_needs_it(finished, monkeypatch):
    # b seed 1 (a distiller) is unfinished and the teacher's checkpoint is missing
    summary = lazy_teacher_compare(finished, monkeypatch)
    assert FakeRunner.trained == ['teacher', 'b_seed1']
    assert summary['complete'] is True
    assert common._ensure_teacher is None  # the hook does not outlive the call


def test_student_run_does_not_train_the_teacher(finished, monkeypatch):
    (finished / 'runs' / 'a_seed1.json').unlink()
    write_result(finished / 'runs', 'b_seed1', 0.65, 1)
    lazy_teacher_compare(finished, monkeypatch)
    assert FakeRunner.trained == ['a_seed1']


@pytest.mark.parametrize('pending, trained', [(True, ['teacher']), (False, [])])
def test_teacher_only_trains_the_teacher_if_a_run_needs_it(finished, monkeypatch, capsys,
                                                           pending, trained):
    if not pending:
        write_result(finished / 'runs', 'b_seed1', 0.65, 1)
    (finished / 'runs' / 'a_seed1.json').unlink()  # a student run needs no teacher
    assert lazy_teacher_compare(finished, monkeypatch, teacher_only=True) is None
    assert FakeRunner.trained == trained
    assert ('for 1 unfinished runs' in capsys.readouterr().out) is pending
    assert not common._report_only

"""Benchmarks spread over sessions: ``--report`` tabulates the runs finished so far and trains
nothing; a teacher whose checkpoint is gone (a new machine: results are committed, checkpoints
are not) is trained again only when a distilled run still has to train."""
import argparse
import json
import os
import os.path as osp

import pytest
import torch
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
    weights = 0

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
        # a training checkpoint: weights (different each training), optimizer, config text
        FakeRunner.weights += 1
        torch.save(dict(state_dict={'w': torch.full((2, ), float(FakeRunner.weights))},
                        optimizer={'momentum': torch.zeros(2)}, meta=dict(cfg='print(1)')),
                   osp.join(self.cfg.work_dir, 'epoch_1.pth'))

    def val(self):
        return {'acc': 0.7}


def lazy_teacher_compare(tmp_path, monkeypatch, keep=False, **flags):
    """compare() over a teacher that loads from ``work/teacher/epoch_1.pth`` (``keep``: from
    its kept weights ``runs/teacher.pth``) and a distilled variant ``b`` whose config loads
    that checkpoint (variant ``a``: no teacher)."""
    monkeypatch.setattr(common, 'Runner', FakeRunner)
    FakeRunner.trained = []
    work, runs = str(tmp_path / 'work'), str(tmp_path / 'runs')
    ckpt = osp.join(work, 'teacher', 'epoch_1.pth')

    def cfg(model):
        return Config(dict(model=model))

    def train_teacher(args):
        result = common.run_config('teacher', cfg(dict(type='T')), work, runs,
                                   reuse_needs='epoch_1.pth', keep_weights=keep)
        return (result['weights'] if keep else ckpt), result

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


def result_of(tmp_path, name):
    with open(tmp_path / 'runs' / f'{name}.json') as f:
        return json.load(f)


def test_kept_teacher_serves_the_next_machine(finished, monkeypatch):
    # b seed 1 needs the teacher: it is trained, its weights kept beside its result
    summary = lazy_teacher_compare(finished, monkeypatch, keep=True)
    assert FakeRunner.trained == ['teacher', 'b_seed1']
    assert summary['teacher']['weights'] == osp.join('runs', 'teacher.pth')  # not this machine's
    kept = finished / 'runs' / 'teacher.pth'
    teacher = result_of(finished, 'teacher')
    assert teacher['weights_sha256'] == common.sha256_of(str(kept))
    # only the weights travel: no optimizer state, no config text
    saved = torch.load(kept, weights_only=True)
    assert set(saved) == {'state_dict', 'meta'} and 'cfg' not in saved['meta']
    trained = torch.load(finished / 'work' / 'teacher' / 'epoch_1.pth', weights_only=True)
    assert torch.equal(saved['state_dict']['w'], trained['state_dict']['w'])
    assert result_of(finished, 'b_seed1')['teacher_sha256'] == teacher['weights_sha256']
    # the next machine: no work dir, b seed 1 to train again; the kept teacher serves it
    for path in sorted((finished / 'work').rglob('*'), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (finished / 'runs' / 'b_seed1.json').unlink()
    lazy_teacher_compare(finished, monkeypatch, keep=True)
    assert FakeRunner.trained == ['b_seed1']
    assert result_of(finished, 'b_seed1')['teacher_sha256'] == teacher['weights_sha256']


def test_kept_weights_of_another_file_are_refused(finished, monkeypatch):
    # the kept file is not the one the result recorded: no student distils from it
    lazy_teacher_compare(finished, monkeypatch, keep=True)
    torch.save(dict(state_dict={'w': torch.zeros(2)}), finished / 'runs' / 'teacher.pth')
    (finished / 'runs' / 'b_seed1.json').unlink()
    with pytest.raises(ValueError, match=r'teacher.pth is not the teacher .*teacher.json '
                       r'recorded .*restore it'):
        lazy_teacher_compare(finished, monkeypatch, keep=True)
    assert FakeRunner.trained == []


def test_distilled_run_of_another_teacher_is_not_reused(finished, monkeypatch):
    lazy_teacher_compare(finished, monkeypatch, keep=True)
    b0 = result_of(finished, 'b_seed1')
    b0['teacher_sha256'] = '0' * 64
    with open(finished / 'runs' / 'b_seed1.json', 'w') as f:
        json.dump(b0, f)
    with pytest.raises(ValueError, match=r'b_seed1.json was distilled from another teacher '
                       r'\(sha256 000000000000\).*move it aside'):
        lazy_teacher_compare(finished, monkeypatch, keep=True)


def test_keep_weights_needs_the_checkpoint_name(tmp_path):
    with pytest.raises(ValueError, match='keep_weights needs reuse_needs'):
        common.run_config('t', Config(dict(model=dict(type='T'))), str(tmp_path),
                          str(tmp_path), keep_weights=True)


def test_config_fingerprint_counts_what_trains_not_where_files_lie():
    def cfg(weight, cfg_path, ckpt, pretrained):
        return Config(dict(
            model=dict(type='D', teacher=dict(cfg_path=cfg_path), teacher_ckpt=ckpt,
                       student=dict(init_cfg=dict(checkpoint=pretrained)),
                       distill_losses=dict(loss_kd=dict(type='KDLoss', loss_weight=weight))),
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
            train_dataloader=dict(dataset=dict(data_root='/data/here'))))

    here = osp.join(common.REPO_ROOT, 'configs', 'kd', '..', 'baselines', 't.py')
    base = common.config_fingerprint(cfg(1.0, here, '/a/teacher.pth', '/w1/mnv2.pth'))
    # another machine: the teacher elsewhere, pretrained weights in another work dir; a path
    # inside the repository compares relative to it
    assert common.config_fingerprint(
        cfg(1.0, 'configs/baselines/t.py', '/b/other.pth', '/w2/mnv2.pth')) == base
    # what trains does count
    assert common.config_fingerprint(cfg(2.0, here, '/a/teacher.pth', '/w1/mnv2.pth')) != base
    assert common.config_fingerprint(
        cfg(1.0, here.replace('t.py', 'u.py'), '/a/teacher.pth', '/w1/mnv2.pth')) != base
    changed_lr = cfg(1.0, here, '/a/teacher.pth', '/w1/mnv2.pth')
    changed_lr.optim_wrapper.optimizer.lr = 0.2
    assert common.config_fingerprint(changed_lr) != base


def loss_weight_runs(tmp_path, monkeypatch):
    """``run(weight)``: the run ``s_seed0`` of a config with that loss weight, on FakeRunner;
    returns the config and run_config's result."""
    monkeypatch.setattr(common, 'Runner', FakeRunner)
    FakeRunner.trained = []
    work, runs = str(tmp_path / 'work'), str(tmp_path / 'runs')

    def run(weight):
        cfg = Config(dict(model=dict(type='S', loss=dict(loss_weight=weight))))
        return cfg, common.run_config('s_seed0', cfg, work, runs)

    return run, work, runs


def test_finished_run_of_another_config_is_not_reused(tmp_path, monkeypatch):
    run_cfg, work, runs = loss_weight_runs(tmp_path, monkeypatch)

    def run(weight):
        return run_cfg(weight)[1]

    first = run(1.0)
    assert first['config_sha256'] == common.config_fingerprint(
        Config(dict(model=dict(type='S', loss=dict(loss_weight=1.0)))))
    assert run(1.0)['metrics'] == first['metrics'] and FakeRunner.trained == ['s_seed0']
    with pytest.raises(ValueError, match=r's_seed0.json was trained with another config '
                       r'\(fingerprint [0-9a-f]{16}\).*Move it aside'):
        run(2.0)
    assert FakeRunner.trained == ['s_seed0']
    # a result from before fingerprints: reused as it is
    result = result_of(tmp_path, 's_seed0')
    del result['config_sha256']
    common.write_json(osp.join(runs, 's_seed0.json'), result)
    assert run(2.0)['metrics'] == first['metrics'] and FakeRunner.trained == ['s_seed0']


def test_interrupted_run_resumes_only_under_the_config_it_started_with(tmp_path, monkeypatch):
    run, work, runs = loss_weight_runs(tmp_path, monkeypatch)
    cfg, _ = run(1.0)
    identity = osp.join(work, 's_seed0', common.RUN_IDENTITY)
    with open(identity) as f:
        assert json.load(f) == dict(config_sha256=common.config_fingerprint(cfg),
                                    teacher_sha256=None)
    # interrupted: a checkpoint to resume from, no result yet
    os.remove(osp.join(runs, 's_seed0.json'))
    with open(osp.join(work, 's_seed0', 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work, 's_seed0', 'epoch_1.pth'))
    with pytest.raises(ValueError, match=r's_seed0 was started with another config_sha256 '
                       r'\([0-9a-f]{16}, now [0-9a-f]{16}\).*Move the folder aside'):
        run(2.0)
    assert FakeRunner.trained == ['s_seed0']
    assert run(1.0)[1]['resumed'] and FakeRunner.trained == ['s_seed0', 's_seed0']
    # started before identities were kept: resumed, and the identity recorded from then on
    os.remove(osp.join(runs, 's_seed0.json'))
    os.remove(identity)
    assert run(2.0)[1]['resumed'] and osp.isfile(identity)

"""``--report`` of the benchmark scripts: a long CPU benchmark spread over sessions is
tabulated from the runs finished so far, and nothing is trained."""
import argparse
import json
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'benchmarks'))
import common  # noqa: E402


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
    summary = report(finished, configs=configs)
    assert summary['complete'] is True
    assert summary['gain_over_ablation'] is None
    # a run of one variant alone (as bccd_parallel.sh makes) is no finished comparison
    assert report(finished, variants=('b', ), configs=configs)['complete'] is False


def test_report_without_finished_teacher_says_what_to_run(finished):
    (finished / 'runs' / 'teacher.json').unlink()
    with pytest.raises(SystemExit, match='teacher run "teacher" is not finished'):
        report(finished)

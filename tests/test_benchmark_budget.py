"""The budget pieces of the classification benchmarks (issue #24): same-seed differences, the
plateau rules of ``fashion_mnist_budget.py``, budget-named result files, the teacher cache's
eligibility, the five-seed ReviewKD BCCD summary and the grid estimate."""
import argparse
import json
import os.path as osp
import types

import pytest
from mmengine.config import Config

from benchmarks import fashion_mnist_budget as budget
from benchmarks.lib import common
from benchmarks.lib import fashion_mnist as fm
from tests.conftest import REPO_ROOT as REPO


# ---------------------------------------------------------------------------- paired
def test_paired_differences_pair_seeds_and_skip_unpaired():
    values = dict(kd={0: 88.0, 1: 88.5, 2: 87.0}, stkd={0: 89.0, 1: 88.0, 2: 88.0},
                  student={0: 83.0, 2: 84.0})
    paired = common.paired_differences(values, ['kd', 'missing'])
    assert list(paired) == ['kd']  # a reference that was not run is left out
    stkd = paired['kd']['stkd']
    assert stkd['per_seed'] == {'0': 1.0, '1': -0.5, '2': 1.0}
    assert stkd['mean'] == pytest.approx(0.5)
    assert stkd['std'] == pytest.approx(0.87, abs=0.01)
    assert (stkd['min'], stkd['max'], stkd['n'], stkd['positive']) == (-0.5, 1.0, 3, 2)
    student = paired['kd']['student']  # seed 1 unfinished: only the common seeds
    assert student['per_seed'] == {'0': -5.0, '2': -3.0} and student['n'] == 2
    one = common.paired_differences(dict(a={0: 1.0}, b={0: 2.0}), ['a'])['a']['b']
    assert one['std'] is None and one['mean'] == 1.0


def test_seed_std_is_the_sample_std():
    std = common.seed_std(dict(a={0: 1.0, 1: 3.0}, b={0: 5.0}))
    assert std['a'] == pytest.approx(1.4142, abs=1e-4) and std['b'] is None


def test_compare_reports_paired_differences(tmp_path, capsys):
    runs = tmp_path / 'runs'
    runs.mkdir()

    def write(name, value, seed):
        with open(runs / f'{name}.json', 'w') as f:
            json.dump(dict(name=name, config=f'{name}.py', seed=seed, train_time_s=1.0,
                           metrics={'acc': value}), f)

    write('teacher', 0.9, 0)
    for seed, (a, b) in enumerate([(0.50, 0.55), (0.60, 0.62)]):
        write(f'a_seed{seed}', a, seed)
        write(f'b_seed{seed}', b, seed)
    args = argparse.Namespace(seeds=[0, 1], variants=['a', 'b'], report=True,
                              results=str(tmp_path / 'summary.json'))

    def run(name):
        return common.run_config(name, None, str(tmp_path / 'work'), str(runs))

    summary = common.compare(
        args, dict(a='a.py', b='b.py'), method='b', baseline='a', last_key='acc_gain',
        metric='acc', metric_name='acc', scale=100.0, settings={},
        train_teacher=lambda args: ('ckpt', run('teacher')),
        train_student=lambda v, c, s, *_: run(f'{v}_seed{s}'),
        header=lambda teacher: 'header', paired_with=['a'])
    out = capsys.readouterr().out
    assert '| b - a | +3.50 | 2.12 | +2.00 | +5.00 | 2/2 | +5.00 | +2.00 |' in out
    assert summary['paired']['a']['b']['mean'] == pytest.approx(3.5)
    assert summary['std']['a'] == pytest.approx(7.07, abs=0.01)
    with open(tmp_path / 'summary.json') as f:
        assert 'paired' in json.load(f)


# ---------------------------------------------------------------------------- the rules
def test_plateau_epoch_needs_a_full_window():
    curve = {1: 80.0, 2: 85.0, 3: 87.0, 4: 87.2, 5: 87.1, 6: 87.3, 7: 87.2}
    assert budget.plateau_epoch(curve, delta=0.3, window=3) == 3
    assert budget.plateau_epoch(curve, delta=0.1, window=3) == 4  # 87.2 vs best 87.3
    assert budget.plateau_epoch({1: 80.0, 2: 85.0}, delta=0.3, window=3) is None
    rising = {e: 80.0 + e for e in range(1, 9)}
    assert budget.plateau_epoch(rising, delta=0.3, window=2) is None


def test_choose_length_is_the_shortest_within_delta_of_every_longer():
    assert budget.choose_length({5: 90.0, 10: 91.0, 20: 91.2}, delta=0.3) == 10
    assert budget.choose_length({5: 91.1, 10: 91.0, 20: 91.3}, delta=0.3) == 5
    # within delta of the next length but not of the longest: not a plateau
    assert budget.choose_length({5: 90.0, 10: 90.2, 20: 91.0}, delta=0.3) is None
    # only the longest meets it (trivially): no plateau shown
    assert budget.choose_length({5: 89.0, 10: 90.0}, delta=0.3) is None
    assert budget.choose_length({10: 90.0}, delta=0.3) is None


def test_iterations_per_epoch_keep_the_last_batch():
    assert budget.iters_per_epoch(5000) == 40  # the committed 15-epoch runs: 600 iterations
    assert budget.iters_per_epoch(60000) == 469


def test_summarise_picks_the_schedule_and_estimates_epochs():
    def run(length, final, step):
        curve = {str(e): dict(top1=final - (length - e), val_s=8.0, train_s=100.0)
                 for e in range(1, length + 1)}
        return dict(name=f'student_curve_{length}e', metrics={fm.METRIC: final},
                    step_time_s=step, train_time_s=step * length * 469,
                    iters=469 * length, extra=dict(curve=curve, fit_top1=95.0))

    entry = budget.summarise({2: run(2, 90.0, 0.3), 4: run(4, 91.0, 0.28),
                              8: run(8, 91.1, 0.26)}, 60000, delta=0.3, window=1)
    assert entry['chosen_epochs'] == 4 and entry['chosen_iters'] == 4 * 469
    assert entry['runs']['8']['curve'][8] == 91.1
    assert entry['runs']['4']['fit_top1'] == 95.0
    assert entry['median_step_s'] == pytest.approx(0.28)
    assert entry['epoch_time_all_60000_s'] == pytest.approx(0.28 * 469, abs=0.1)


class _CurveRunner:
    """What ValCurveHook uses of a runner."""

    def __init__(self, work_dir, epoch):
        self.work_dir, self.epoch, self.validated = str(work_dir), epoch, 0
        self.val_loop = types.SimpleNamespace(run=self._val)
        self.hook = None

    def _val(self):
        self.validated += 1
        self.hook.before_val_epoch(self)
        self.hook.after_val_epoch(self, {fm.METRIC: 50.0 + self.epoch})


def test_val_curve_hook_records_epochs_and_fills_an_interrupted_validation(tmp_path):
    hook = budget.ValCurveHook()
    runner = _CurveRunner(tmp_path, epoch=0)
    runner.hook = hook
    hook.before_train(runner)
    assert runner.validated == 0  # a fresh run: nothing to fill
    for epoch in (1, 2):
        hook.before_train_epoch(runner)
        hook.after_train_epoch(runner)
        runner.epoch = epoch
        runner._val()
    with open(tmp_path / budget.CURVE_FILE) as f:
        curve = json.load(f)
    assert {k: v['top1'] for k, v in curve.items()} == {'1': 51.0, '2': 52.0}
    assert curve['2']['train_s'] is not None
    # the final validation of a finished run does not overwrite the epoch's entry
    runner._val()
    with open(tmp_path / budget.CURVE_FILE) as f:
        assert json.load(f)['2'] == curve['2']
    # resumed at epoch 3 whose validation never ran: validated before training goes on
    resumed = _CurveRunner(tmp_path, epoch=3)
    resumed.hook = budget.ValCurveHook()
    resumed.hook.before_train(resumed)
    assert resumed.validated == 1
    with open(tmp_path / budget.CURVE_FILE) as f:
        curve = json.load(f)
    assert curve['3'] == dict(top1=53.0, val_s=curve['3']['val_s'], train_s=None)
    # resumed at a validated epoch: nothing to do
    again = _CurveRunner(tmp_path, epoch=3)
    again.hook = budget.ValCurveHook()
    again.hook.before_train(again)
    assert again.validated == 0


def test_with_curve_validates_every_epoch_and_adds_the_hook():
    cfg = fm.configure(Config.fromfile(fm.STUDENT_CONFIG), 0, 5, '/data')
    budget.with_curve(cfg)
    assert (cfg.train_cfg.val_interval, cfg.train_cfg.val_begin) == (1, 1)
    assert cfg.custom_hooks[-1] == dict(type='BudgetValCurveHook')


# ---------------------------------------------------------------------------- budgets
def _args(**kw):
    base = dict(subset=5000, epochs=15, teacher_epochs=3, teacher_subset=0, views=0,
                results=None, results_default='/r/stkd_fashion_mnist.json')
    base.update(kw)
    return argparse.Namespace(**base)


def test_budget_tag_and_results_path():
    assert fm.budget_tag(_args()) == ''
    assert fm.results_path(_args()) == '/r/stkd_fashion_mnist.json'
    assert fm.budget_tag(_args(subset=0, epochs=20)) == '60k-20e'
    assert fm.results_path(_args(subset=0, epochs=20)) == '/r/stkd_fashion_mnist_60k-20e.json'
    assert fm.budget_tag(_args(subset=20000, epochs=10, views=4)) == '20k-10e_v4'
    assert fm.budget_tag(_args(subset=0, epochs=5, teacher_epochs=10)) == '60k-5e_t10e'
    assert fm.budget_tag(_args(subset=256, epochs=1, teacher_epochs=1,
                               teacher_subset=256)) == '256-1e_t1e-256'
    assert fm.results_path(_args(subset=0, results='/x/mine.json')) == '/x/mine.json'
    # a script without the budget options (teacher_cost.py) is the small budget
    assert fm.budget_tag(argparse.Namespace()) == ''


def test_budget_named_parser_defaults_to_the_small_budget_file():
    parser = argparse.ArgumentParser()
    fm.add_arguments(parser, 'stkd_fashion_mnist.json', budget_named=True)
    args = parser.parse_args([])
    assert osp.basename(fm.results_path(args)) == 'stkd_fashion_mnist.json'
    args = parser.parse_args(['--subset', '0', '--epochs', '8', '--views', '4'])
    assert osp.basename(fm.results_path(args)) == 'stkd_fashion_mnist_60k-8e_v4.json'
    assert fm.shared_runs_dir(args) == osp.join(REPO, 'benchmarks', 'results',
                                                'fashion_mnist_runs')
    assert args.cache_variants == ['kd']
    assert not args.teacher_only
    # --teacher-only: common.compare makes the teacher and stops (tested in
    # test_benchmark_report); the option must reach it under the name it reads
    assert parser.parse_args(['--teacher-only', '--teacher-epochs', '12']).teacher_only
    # teacher_cost.py keeps its plain --results
    parser = argparse.ArgumentParser()
    fm.add_arguments(parser, 'teacher_cost.json')
    assert parser.parse_args([]).results.endswith('teacher_cost.json')


def test_the_teacher_cache_is_refused_to_batch_augments():
    stkd = osp.join(REPO, 'configs', 'stkd',
                    'stkd_resnet18-w32_resnet18-w8_1xb128-15e_fashion-mnist.py')
    review = osp.join(REPO, 'configs', 'reviewkd',
                      'reviewkd-kd_resnet18-w32_resnet18-w8_1xb128-15e_fashion-mnist.py')
    assert fm.cache_allowed(Config.fromfile(fm.KD_CONFIG))
    assert fm.cache_allowed(Config.fromfile(review))
    assert not fm.cache_allowed(Config.fromfile(stkd))  # mixes the batch after the dataset
    assert not fm.cache_allowed(Config.fromfile(fm.STUDENT_CONFIG))  # no teacher

    cfg = Config.fromfile(stkd)
    assert fm.use_views(cfg, 4, cache_dir='/tmp/cache') is False
    assert cfg.train_dataloader.dataset.type == 'mmstructkd.ReplayableViews'
    assert cfg.train_dataloader.dataset.num_views == 4
    assert cfg.model.teacher_cache is None
    cfg = Config.fromfile(fm.KD_CONFIG)
    assert fm.use_views(cfg, 2, cache_dir='/tmp/cache', dtype='fp32') is True
    assert cfg.model.teacher_cache == dict(dir='/tmp/cache', dtype='fp32')
    fm.use_views(cfg, 2)  # wrapped once, not twice
    assert cfg.train_dataloader.dataset.dataset.type == 'FashionMNIST'


def test_blockwise_budget_tag():
    from benchmarks import blockwise_fashion_mnist as bw
    small = argparse.Namespace(**bw.SMALL_BUDGET)
    assert bw.budget_tag(small) == ''
    big = argparse.Namespace(**dict(bw.SMALL_BUDGET, epochs=8, subset=0, teacher_epochs=5,
                                    teacher_subset=0, views=4))
    assert bw.budget_tag(big) == '60k-8e_t5e-60k_v4'


def test_bw_teacher_curve_trains_the_uncompressed_model_at_each_length(tmp_path, monkeypatch):
    from benchmarks import blockwise_fashion_mnist as bw
    args = budget.parse_args(['bw-teacher', '--lengths', '8', '12', '--work-dir', str(tmp_path),
                              '--results', str(tmp_path / 'budget.json')])
    monkeypatch.setattr(fm, 'prepare_data', lambda root: None)
    monkeypatch.setattr(bw, 'imagenet_mobilenet_v2', lambda path, layout: '/w/imagenet.pth')
    seen = {}

    def curve_run(name, cfg, *args):
        seen[name] = cfg
        return dict(name=name)

    monkeypatch.setattr(budget, 'curve_run', curve_run)
    key, runs = budget.bw_teacher_target(args)
    assert key == 'bw_teacher_60k' and sorted(runs) == [8, 12]
    assert sorted(seen) == ['bw_teacher_curve_12e-all_vall_seed0',
                            'bw_teacher_curve_8e-all_vall_seed0']
    cfg = seen['bw_teacher_curve_12e-all_vall_seed0']
    assert cfg.train_cfg.max_epochs == 12
    assert cfg.model.backbone.init_cfg == dict(type='Pretrained', checkpoint='/w/imagenet.pth',
                                               prefix='backbone.')
    assert cfg.train_dataloader.dataset.get('indices') is None  # all 60000 images
    # the same model and training as the block-wise benchmark's teacher at that length
    teacher = bw.teacher_config(args, 12)
    assert common.config_fingerprint(cfg) == common.config_fingerprint(teacher)


def test_reviewkd_bccd_five_seeds_reuse_the_three_seed_runs():
    from benchmarks import reviewkd_bccd
    default = osp.join(REPO, 'benchmarks', 'results', 'reviewkd_bccd.json')
    args = argparse.Namespace(results=default, seeds=[0, 1, 2])
    reviewkd_bccd.seeds_summary(args)
    assert args.results == default and not hasattr(args, 'runs_dir')
    args = argparse.Namespace(results=default, seeds=[0, 1, 2, 3, 4])
    reviewkd_bccd.seeds_summary(args)
    assert osp.basename(args.results) == 'reviewkd_bccd_5seeds.json'
    assert args.runs_dir == osp.splitext(default)[0] + '_runs'
    args = argparse.Namespace(results=default, seeds=[3])  # one run of bccd_parallel.sh
    reviewkd_bccd.seeds_summary(args)
    assert osp.basename(args.results) == 'reviewkd_bccd_seeds3.json'
    assert args.runs_dir == osp.splitext(default)[0] + '_runs'
    # the same name in another folder (a frozen copy of the code writing into a checkout)
    args = argparse.Namespace(results='/work/main/benchmarks/results/reviewkd_bccd.json',
                              seeds=[0, 1, 2, 3, 4])
    reviewkd_bccd.seeds_summary(args)
    assert args.results == '/work/main/benchmarks/results/reviewkd_bccd_5seeds.json'
    assert args.runs_dir == '/work/main/benchmarks/results/reviewkd_bccd_runs'
    args = argparse.Namespace(results='/tmp/x.json', seeds=[0, 1, 2, 3, 4])
    reviewkd_bccd.seeds_summary(args)  # an explicit summary keeps its own runs folder
    assert args.results == '/tmp/x.json' and not hasattr(args, 'runs_dir')


# ---------------------------------------------------------------------------- plan
def test_plan_hours_from_measured_steps(tmp_path):
    (tmp_path / 'fashion_mnist_runs').mkdir()
    for seed, step in enumerate([0.3, 0.5, 0.4]):
        with open(tmp_path / 'fashion_mnist_runs' / f'student_15e-5000_seed{seed}.json',
                  'w') as f:
            json.dump(dict(step_time_s=step), f)
    steps = budget.measured_steps(str(tmp_path))
    assert steps == {'student': 0.4}
    hours = budget.grid_hours(steps, ['student'], images=60000, epochs=10, seeds=3)
    assert hours['student'] == pytest.approx(0.4 * 469 * 10 * 3 / 3600)
    cached = budget.cached_steps(dict(student=0.3, kd=0.7, **{'kd-cache': 0.4},
                                      reviewkd=1.7, stkd=0.9, blockwise_kd=0.6, scratch=0.45))
    assert cached['kd'] == pytest.approx(0.4)
    assert cached['blockwise_kd'] == pytest.approx(0.55)  # scratch + the cache's overhead
    assert cached['reviewkd'] == 1.7  # slower with the cache: not cached
    assert cached['stkd'] == 0.9  # batch augments: no cache


# ---------------------------------------------------------------------------- probes
def test_probe_adds_a_named_variant_with_its_options_and_its_own_summary():
    parser = argparse.ArgumentParser()
    fm.add_arguments(parser, 'reviewkd_fashion_mnist.json', budget_named=True)
    parser.add_argument('--variants', nargs='+', default=['student', 'kd', 'reviewkd'])
    args = parser.parse_args([
        '--subset', '0', '--epochs', '12', '--teacher-epochs', '24', '--seeds', '0',
        '--variants', 'student', 'kd', 'reviewkd',
        '--probe', 'reviewkd@hcl2', 'model.distill_losses.loss_hcl.loss_weight=2.0',
        '--probe', 'reviewkd@mid32', 'model.connectors.review.mid_channels=32',
        'custom_hooks.0.schedule.loss_hcl=[(0,0.0),(2,1.0)]'])
    variants = fm.add_probes(args, dict(student='s.py', kd='k.py', reviewkd='r.py'))
    assert variants['reviewkd@hcl2'] == variants['reviewkd@mid32'] == 'r.py'
    assert args.variants == ['student', 'kd', 'reviewkd', 'reviewkd@hcl2', 'reviewkd@mid32']
    assert args.probe_options == {
        'reviewkd@hcl2': {'model.distill_losses.loss_hcl.loss_weight': 2.0},
        'reviewkd@mid32': {'model.connectors.review.mid_channels': 32,
                           'custom_hooks.0.schedule.loss_hcl': [(0, 0.0), (2, 1.0)]}}
    # the runs beside the budget's own, the table in a file of its own
    grid = osp.join(REPO, 'benchmarks', 'results', 'reviewkd_fashion_mnist_60k-12e_t24e')
    assert args.runs_dir == grid + '_runs'
    assert args.results == grid + '_probes.json'


def test_probe_options_reach_the_run_config_and_name_it(tmp_path, monkeypatch):
    args = argparse.Namespace(subset=0, epochs=12, teacher_epochs=24, teacher_subset=0,
                              views=0, data_root='/data', work_dir=str(tmp_path),
                              results=str(tmp_path / 'x.json'), variants=['reviewkd'],
                              probe=[['reviewkd@hcl2',
                                      'model.distill_losses.loss_hcl.loss_weight=2.0']])
    review = osp.join(REPO, 'configs', 'reviewkd',
                      'reviewkd_resnet18-w32_resnet18-w8_1xb128-15e_fashion-mnist.py')
    variants = fm.add_probes(args, dict(reviewkd=review))
    seen = {}
    monkeypatch.setattr(fm, 'run_config',
                        lambda name, cfg, *a, **k: seen.setdefault(name, cfg))
    for variant in variants:
        fm.train_student(variant, variants[variant], 0, args, '/t.pth', str(tmp_path))
    plain = seen['reviewkd_12e-all_t24e-all_seed0']
    probe = seen['reviewkd@hcl2_12e-all_t24e-all_seed0']
    assert plain.model.distill_losses.loss_hcl.loss_weight == 1.0
    assert probe.model.distill_losses.loss_hcl.loss_weight == 2.0


@pytest.mark.parametrize('probe, match', [
    (['stkd@t2', 'model.x=1'], r'"stkd@t2" must be VARIANT@NAME with VARIANT one of'),
    (['reviewkd', 'model.x=1'], r'"reviewkd" must be VARIANT@NAME'),
    (['reviewkd@a/b', 'model.x=1'], r'NAME of letters'),
    (['reviewkd@hcl2'], r'no KEY=VALUE after reviewkd@hcl2'),
    (['reviewkd@hcl2', 'loss_weight'], r'no KEY=VALUE'),
])
def test_a_malformed_probe_names_itself_and_the_form(probe, match):
    args = argparse.Namespace(results='/x.json', variants=['reviewkd'], probe=[probe])
    with pytest.raises(ValueError, match=match):
        fm.add_probes(args, dict(reviewkd='r.py'))

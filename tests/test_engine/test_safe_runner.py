"""SafeRunner: exact resume (RNG states in the checkpoint), crash-safe checkpoints, fallback
to the newest intact checkpoint."""
import glob
import importlib.util
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys

import pytest
import torch

from mmstructkd.engine import SafeRunner
from mmstructkd.utils import CorruptCheckpointError, safe_load
from mmstructkd.utils.checkpoint import resume_candidates
from tests.conftest import CONFIG_DIR, REPO_ROOT, free_port, load_config, save_teacher


@pytest.fixture(autouse=True)
def plain_config_text(monkeypatch):
    """Formatting configs (yapf) is half of these tiny runs and has nothing to do with what
    they test: runners dump the config's plain text instead."""
    from mmengine.config import Config
    monkeypatch.setattr(Config, 'pretty_text', property(lambda self: self.text))


def train_main(argv):
    spec = importlib.util.spec_from_file_location('train_tool',
                                                  osp.join(REPO_ROOT, 'tools', 'train.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(argv)


def cli_options(data_root, teacher, **extra):
    options = {f'{loader}.dataset.data_root': data_root
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')}
    options.update({'model.teacher_ckpt': teacher, 'train_cfg.max_iters': 4,
                    'train_cfg.val_interval': 2, 'default_hooks.checkpoint.interval': 2,
                    'custom_hooks': '[]'})
    options.update(extra)
    return [f'{k}={v}' for k, v in options.items()]


def assert_same(a, b, where=''):
    """Bit-for-bit equality of nested checkpoint contents."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), f'{where}: {sorted(set(a) ^ set(b))}'
        for k in a:
            assert_same(a[k], b[k], f'{where}.{k}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f'{where}[{i}]')
    else:
        assert a == b, f'{where}: {a!r} != {b!r}'


@pytest.mark.parametrize('config,extra', [
    ('tiny_seg_distill', {}),  # logit KD + feature hint
    ('tiny_seg_distill', {'model.student.decode_head.dropout_ratio': 0.1}),  # draws torch.rand
    ('tiny_seg_adversarial', {}),  # holistic: the critic's penalty draws its own generator
], ids=['logit_kd', 'student_dropout', 'holistic'])
def test_resume_equals_the_uninterrupted_run_bit_for_bit(config, extra, data_roots, tmp_path):
    """4 iterations straight == 2 + tools/train.py --resume + 2 (validation at 2 in between)."""
    teacher = save_teacher('tiny_seg_teacher', str(tmp_path / 'teacher.pth'))
    config_file = osp.join(CONFIG_DIR, f'{config}.py')
    options = cli_options(data_roots['seg'], teacher, **extra)
    straight, resumed = str(tmp_path / 'straight'), str(tmp_path / 'resumed')
    train_main([config_file, '--work-dir', straight, '--cfg-options', *options,
                'experiment_name=straight'])
    train_main([config_file, '--work-dir', resumed, '--resume',
                osp.join(straight, 'iter_2.pth'), '--cfg-options', *options,
                'experiment_name=resumed'])
    a = safe_load(osp.join(straight, 'iter_4.pth'))
    b = safe_load(osp.join(resumed, 'iter_4.pth'))
    assert_same(a['state_dict'], b['state_dict'], 'state_dict')
    assert_same(a['optimizer'], b['optimizer'], 'optimizer')
    assert_same(a['rng_state'], b['rng_state'], 'rng_state')
    # Every loss and learning rate of every iteration (the straight run's validation at 2 is
    # logged under val/ in its message hub only).
    scalars = [{k: v for k, v in hub['log_scalars'].items()
                if k.startswith('train/') and 'time' not in k}
               for hub in (a['message_hub'], b['message_hub'])]
    assert set(scalars[0]) == set(scalars[1]) and 'train/loss' in scalars[0]
    for key in scalars[0]:
        history = [s[key].data[0].tolist() for s in scalars]
        assert len(history[0]) == 4 and history[0] == history[1], key
    # What the checkpoint holds is plain data: torch's default weights_only=True reads it.
    plain = torch.load(osp.join(straight, 'iter_2.pth'), weights_only=True)
    assert plain['rng_state']['world_size'] == 1
    modules = plain['rng_state']['ranks'][0]['modules']
    if config == 'tiny_seg_adversarial':
        assert set(modules) == {''} and 'gp_generator' in modules['']
    else:
        assert modules == {}


@pytest.fixture(scope='module')
def four_iterations(data_roots, tmp_path_factory):
    """A 4-iteration run with checkpoints at 2 and 4 (options for more runs like it)."""
    tmp = tmp_path_factory.mktemp('four_iterations')
    teacher = save_teacher('tiny_seg_teacher', str(tmp / 'teacher.pth'))
    options = {'model.teacher_ckpt': teacher, 'train_cfg.max_iters': 4,
               'train_cfg.val_interval': 100, 'default_hooks.checkpoint.interval': 2,
               'custom_hooks': []}
    cfg = load_config('tiny_seg_distill', data_roots['seg'], str(tmp / 'run'), **options)
    cfg.experiment_name = 'four_iterations'
    SafeRunner.from_cfg(cfg).train()
    return dict(work=str(tmp / 'run'), options=options)


def copy_run(run, dst):
    os.makedirs(dst)
    for name in ('iter_2.pth', 'iter_4.pth'):
        shutil.copy(osp.join(run['work'], name), osp.join(dst, name))
    with open(osp.join(dst, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(dst, 'iter_4.pth'))
    return dst


def run_log(work):
    logs = glob.glob(osp.join(work, '*', '*.log'))
    return ''.join(open(p).read() for p in logs)


@pytest.mark.parametrize('damage', ['truncated', 'empty', 'pointer_empty'])
def test_auto_resume_falls_back_to_the_newest_intact_checkpoint(damage, four_iterations,
                                                                data_roots, tmp_path):
    work = copy_run(four_iterations, str(tmp_path / 'work'))
    latest = osp.join(work, 'iter_4.pth')
    if damage == 'truncated':  # killed while writing (without an atomic write)
        with open(latest, 'r+b') as f:
            f.truncate(os.path.getsize(latest) // 2)
    elif damage == 'empty':  # disk full
        open(latest, 'wb').close()
    else:  # last_checkpoint itself emptied
        open(osp.join(work, 'last_checkpoint'), 'w').close()
    cfg = load_config('tiny_seg_distill', data_roots['seg'], work, **four_iterations['options'])
    cfg.resume, cfg.experiment_name = True, f'fallback_{damage}'
    runner = SafeRunner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 4
    log = run_log(work)
    if damage == 'pointer_empty':
        assert 'last_checkpoint is empty' in log
        assert f'Auto resumed from the latest checkpoint {latest}' in log
    else:
        assert f'"{latest}"' in log and 'Falling back to the previous checkpoint' in log
        assert f'Resuming from {osp.join(work, "iter_2.pth")}' in log
        # ... and it continues exactly as the uninterrupted run did.
        expected = safe_load(osp.join(four_iterations['work'], 'iter_4.pth'))['state_dict']
        assert_same(safe_load(latest)['state_dict'], expected, 'state_dict')


def test_explicit_resume_of_a_corrupt_checkpoint_names_it(four_iterations, data_roots,
                                                          tmp_path):
    work = copy_run(four_iterations, str(tmp_path / 'work'))
    latest = osp.join(work, 'iter_4.pth')
    open(latest, 'wb').close()
    cfg = load_config('tiny_seg_distill', data_roots['seg'], str(tmp_path / 'other'),
                      **four_iterations['options'])
    cfg.resume, cfg.load_from, cfg.experiment_name = True, latest, 'explicit_corrupt'
    with pytest.raises(CorruptCheckpointError, match=f'"{latest}" is empty'):
        SafeRunner.from_cfg(cfg).train()
    _, candidates = resume_candidates(work)
    assert candidates[0] == latest  # auto-resume would try it first, then fall back


def test_a_failed_write_leaves_the_previous_checkpoint_and_pointer(four_iterations, data_roots,
                                                                   tmp_path, monkeypatch):
    """A full disk during the second save: the run fails, last_checkpoint still names the
    first checkpoint and no partial file is left."""
    import mmstructkd.utils.checkpoint as checkpoint_module
    real_save, calls = torch.save, []

    def disk_full(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            f.write(b'PK\x03\x04 half a checkpoint')
            raise OSError(28, 'No space left on device')
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module.torch, 'save', disk_full)
    work = str(tmp_path / 'work')
    cfg = load_config('tiny_seg_distill', data_roots['seg'], work, **four_iterations['options'])
    cfg.experiment_name = 'disk_full'
    with pytest.raises(OSError, match='No space left'):
        SafeRunner.from_cfg(cfg).train()
    files = [n for n in os.listdir(work) if osp.isfile(osp.join(work, n))]
    # No iter_4.pth, no temporary file (beside them only the config the runner dumps).
    assert sorted(files) == ['iter_2.pth', 'last_checkpoint', 'tiny_seg_distill.py']
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work, 'iter_2.pth')


def test_a_kill_between_write_and_rename_leaves_the_old_file(tmp_path):
    """SIGKILL after the temporary file is complete but before the rename: the target keeps
    its old content; the leftover temporary file is no resume candidate."""
    target = str(tmp_path / 'iter_2.pth')
    code = f'''
import os, signal, torch
from mmstructkd.utils.checkpoint import atomic_save
atomic_save(dict(version=1), {target!r})
os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
atomic_save(dict(version=2, pad=torch.zeros(1000)), {target!r})
'''
    result = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert safe_load(target) == dict(version=1)
    leftovers = [n for n in os.listdir(tmp_path) if n != 'iter_2.pth']
    assert len(leftovers) == 1 and leftovers[0].endswith('.tmp')
    assert resume_candidates(str(tmp_path))[1] == [target]


def test_two_processes_save_each_ranks_random_state(data_roots, tmp_path):
    """The holistic distiller on 2 processes: the checkpoint holds each rank's state, and the
    ranks' penalty generators differ (they draw different mixing weights)."""
    teacher = save_teacher('tiny_seg_teacher', str(tmp_path / 'teacher.pth'))
    config = osp.join(CONFIG_DIR, 'tiny_seg_adversarial.py')
    options = cli_options(data_roots['seg'], teacher, **{'train_cfg.val_interval': 100,
                                                         'train_cfg.max_iters': 2})
    env = dict(os.environ, PORT=str(free_port()), OMP_NUM_THREADS='1', PYTHON=sys.executable)
    work = str(tmp_path / 'work')
    result = subprocess.run(['bash', 'tools/dist_train.sh', config, '2', '--work-dir', work,
                             '--cfg-options', *options], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = torch.load(osp.join(work, 'iter_2.pth'), weights_only=True)['rng_state']
    assert saved['world_size'] == 2 and len(saved['ranks']) == 2
    generators = [rank['modules']['']['gp_generator'] for rank in saved['ranks']]
    assert not torch.equal(*generators), 'both ranks draw the same penalty mixing weights'


def test_each_rank_restores_its_own_state(monkeypatch):
    """What a resumed rank restores: its own entry; none from another number of processes."""
    import mmengine.dist
    from mmstructkd.engine.rng import capture_rng_state, restore_rank_rng_state

    class WithGenerator(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.generator = torch.Generator().manual_seed(5)

        def rng_state_dict(self):
            return dict(g=self.generator.get_state())

        def load_rng_state_dict(self, state):
            self.generator.set_state(state['g'])

    model = torch.nn.Sequential(WithGenerator())
    states = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        model[0].generator.manual_seed(seed)
        states.append(capture_rng_state(model))
    saved = dict(world_size=2, ranks=states)
    monkeypatch.setattr(mmengine.dist, 'get_world_size', lambda: 2)
    for rank in (1, 0):
        monkeypatch.setattr(mmengine.dist, 'get_rank', lambda rank=rank: rank)
        torch.manual_seed(99)
        assert restore_rank_rng_state(saved, model)
        torch.manual_seed(rank + 1)
        expected = torch.rand(3), torch.rand(3, generator=torch.Generator().manual_seed(
            rank + 1))
        restore_rank_rng_state(saved, model)
        assert torch.equal(torch.rand(3), expected[0])
        assert torch.equal(torch.rand(3, generator=model[0].generator), expected[1])
    monkeypatch.setattr(mmengine.dist, 'get_world_size', lambda: 1)
    assert not restore_rank_rng_state(saved, model)  # another number of processes


@pytest.mark.parametrize('where', ['outside', 'own', 'copied'])
def test_resumed_best_checkpoint_path_outside_the_run_deletes_nothing(where, four_iterations,
                                                                      data_roots, tmp_path):
    """mmengine's CheckpointHook deletes the previous best checkpoint named in the message hub
    on a new best score: a checkpoint naming a file elsewhere (a copied work dir, a crafted
    file) must not make it delete that file; the run's own best file is replaced as usual."""
    work = copy_run(four_iterations, str(tmp_path / 'work'))
    if where == 'own':
        named = osp.join(work, 'best_mIoU_iter_2.pth')
    else:  # another run's folder; 'copied': the work dir was copied with that file
        named = str(tmp_path / 'elsewhere' / 'best_mIoU_iter_2.pth')
    own = osp.join(work, 'best_mIoU_iter_2.pth')
    for path in {named, own} if where == 'copied' else {named}:
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(b'a file the resumed run must leave alone unless it is its own')
    resume_from = osp.join(work, 'iter_2.pth')
    checkpoint = torch.load(resume_from, weights_only=True)
    checkpoint['message_hub']['runtime_info']['best_ckpt'] = named
    torch.save(checkpoint, resume_from)
    os.remove(osp.join(work, 'iter_4.pth'))
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(resume_from)
    cfg = load_config('tiny_seg_distill', data_roots['seg'], work,
                      **dict(four_iterations['options'], **{
                          'train_cfg.val_interval': 4,
                          'default_hooks.checkpoint.save_best': 'mIoU'}))
    cfg.resume, cfg.experiment_name = True, f'best_{where}'
    SafeRunner.from_cfg(cfg).train()
    assert osp.isfile(osp.join(work, 'best_mIoU_iter_4.pth'))  # the new best was saved
    log = run_log(work)
    if where == 'outside':
        assert osp.isfile(named)
        assert f'message hub entry best_ckpt dropped, {named} lies outside' in log
    elif where == 'copied':
        assert osp.isfile(named) and not osp.isfile(own)  # its copy replaced, not the original
        assert f"this run's copy {own} is used" in log and 'dropped' not in log
    else:
        assert not osp.isfile(named)  # mmengine's own replacement of the previous best
        assert 'dropped' not in log


def test_unsafe_checkpoint_paths_by_hand(tmp_path):
    from pathlib import Path

    from mmstructkd.engine.resumed_paths import checkpoint_dir, unsafe_checkpoint_paths
    work = str(tmp_path / 'work')
    out = tmp_path / 'out'
    # before the hook's before_train: mmengine will write to <out_dir>/<work dir's last part>
    assert checkpoint_dir(work, None, resolved=False) == work
    assert checkpoint_dir(work, Path(out), resolved=False) == str(out / 'work')  # a Path too
    assert checkpoint_dir(work, str(out / 'work'), resolved=True) == str(out / 'work')
    folders = [work, checkpoint_dir(work, out, resolved=False)]
    info = {
        'best_ckpt': osp.join(work, 'best_acc_epoch_3.pth'),  # its own: kept
        'best_ckpt_mIoU': str(out / 'work' / 'best_mIoU_iter_8.pth'),  # the hook's: kept
        'best_ckpt_top1': osp.join(work, 'best_top1_ckpt_3.pt'),  # another filename_tmpl: kept
        'best_ckpt_aAcc': osp.join(work, '..', 'best_aAcc_iter_8.pth'),  # climbs out
        'best_ckpt_x': osp.join(work, 'iter_4.pth'),  # not a best file
        'best_ckpt_y': str(tmp_path),  # a folder: mmengine would rmtree it
        'best_ckpt_z': str(out / 'best_z_iter_8.pth'),  # the out_dir root is not the run's
        'keep_ckpt_ids': [2, 4],  # kept
        'best_score': 0.5,  # not a path
    }
    assert [k for k, _ in unsafe_checkpoint_paths(info, folders)] == [
        'best_ckpt_aAcc', 'best_ckpt_x', 'best_ckpt_y', 'best_ckpt_z']
    for bad in (['../x'], [True], [-1], '2'):
        assert unsafe_checkpoint_paths({'keep_ckpt_ids': bad}, folders)[0][0] == 'keep_ckpt_ids'
    assert unsafe_checkpoint_paths({'keep_ckpt_ids': (2, 4)}, folders) == []

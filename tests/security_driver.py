"""Runs crafted checkpoints through mmstructkd's loading paths, in a process of its own.

Used by tests/test_security.py (not a test module itself): a load that crashes the process
(a segfault) then fails that test instead of killing pytest.

    python -m tests.security_driver SPEC.json RESULTS.json   # from the repository root

SPEC: ``dict(config_dir, data_root, teacher_ckpt, work_root, cases=[dict(id, path, file,
marker), ...])``. Each case loads ``file`` (a local path or URL) through ``path``; RESULTS
gets, per case id, whether it loaded, the error's type and message, whether the marker file
appeared and whether HistoryBuffer's statistics changed. Results are written after every case,
so a crash leaves those of the cases before it.
"""
import json
import os
import os.path as osp
import shutil
import sys
import time
import traceback

from mmengine.config import Config
from mmengine.logging import HistoryBuffer

import mmstructkd  # noqa: F401

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

# Formatting a config (yapf) is most of a tiny runner's start-up and has nothing to do with
# loading: every runner of this process dumps and logs the config's plain text instead.
Config.pretty_text = property(lambda self: self.text)


def tool(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(f'tool_{name}',
                                                  osp.join(REPO_ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def data_options(spec, **extra):
    root = spec['data_root']
    options = [f'{loader}.dataset.data_root={root}'
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    options += [f'model.teacher_ckpt={spec["teacher_ckpt"]}', 'train_cfg.max_iters=2',
                'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=100',
                'param_scheduler=[]', 'custom_hooks=[]']
    return options + [f'{k}={v}' for k, v in extra.items()]


class Paths:
    """One method per loading path: load ``file`` through it."""

    def __init__(self, spec):
        self.spec = spec
        self.config = osp.join(spec['config_dir'], 'tiny_seg_distill.py')
        self._distiller = None

    def work_dir(self, case):
        return osp.join(self.spec['work_root'], case['id'])

    def distiller(self):
        if self._distiller is None:
            from mmengine.config import Config
            from mmengine.registry import MODELS, DefaultScope
            cfg = Config.fromfile(self.config)
            cfg.model.teacher_ckpt = self.spec['teacher_ckpt']
            with DefaultScope.overwrite_default_scope(cfg.default_scope):
                self._distiller = MODELS.build(cfg.model)
        return self._distiller

    def teacher(self, case):
        """SingleTeacherDistiller(teacher_ckpt=file).init_weights() (local path or URL)."""
        distiller = self.distiller()
        distiller.teacher_ckpt = case['file']
        distiller.init_weights()

    def test_tool(self, case):
        """python tools/test.py CONFIG FILE"""
        tool('test')([self.config, case['file'], '--work-dir', self.work_dir(case),
                      '--cfg-options', *data_options(self.spec)])

    def resume(self, case):
        """python tools/train.py CONFIG --resume FILE (the file's meta says iter 2)"""
        tool('train')([self.config, '--work-dir', self.work_dir(case), '--resume',
                       case['file'], '--cfg-options', *data_options(self.spec)])

    def auto_resume(self, case):
        """python tools/train.py CONFIG --resume, FILE as the work dir's latest checkpoint"""
        work = self.work_dir(case)
        os.makedirs(work, exist_ok=True)
        latest = osp.join(work, 'iter_2.pth')
        shutil.copy(case['file'], latest)
        with open(osp.join(work, 'last_checkpoint'), 'w') as f:
            f.write(latest)
        tool('train')([self.config, '--work-dir', work, '--resume', '--cfg-options',
                       *data_options(self.spec)])

    def export(self, case):
        """python tools/export_student.py FILE OUT"""
        out = osp.join(self.work_dir(case), 'student.pth')
        tool('export_student')([case['file'], out])
        from mmstructkd.utils import safe_load
        meta = safe_load(out)['meta']
        case['exported_meta_keys'] = sorted(meta)

    def pretrained(self, case):
        """tools/train.py with the student backbone's init_cfg=Pretrained(checkpoint=FILE)"""
        tool('train')([self.config, '--work-dir', self.work_dir(case), '--cfg-options',
                       *data_options(self.spec, **{
                           'model.student.backbone.init_cfg.type': 'Pretrained',
                           'model.student.backbone.init_cfg.checkpoint': case['file'],
                           'train_cfg.max_iters': 1})])


def statistics_state():
    methods = HistoryBuffer._statistics_methods
    return dict(names=sorted(methods),
                builtin=all(methods.get(n) is getattr(HistoryBuffer, n)
                            for n in ('min', 'max', 'current', 'mean')),
                mean=float(HistoryBuffer([1.0, 3.0], [1, 1]).statistics('mean')))


def main(spec_file, results_file):
    with open(spec_file) as f:
        spec = json.load(f)
    paths = Paths(spec)
    statistics_state()  # the first HistoryBuffer registers mmengine's built-in statistics
    before = statistics_state()
    results = {}
    for case in spec['cases']:
        result = dict(loaded=False, error_type=None, message='')
        start = time.perf_counter()
        try:
            getattr(paths, case['path'].replace('_url', ''))(case)
            result['loaded'] = True
        except BaseException as e:  # noqa: B902  (argparse's SystemExit too)
            result['error_type'] = type(e).__name__
            result['message'] = str(e)
            result['traceback'] = traceback.format_exc()[-3000:]
        result['seconds'] = round(time.perf_counter() - start, 2)
        result['marker'] = osp.exists(case['marker'])
        result['statistics_unchanged'] = statistics_state() == before
        result['exported_meta_keys'] = case.get('exported_meta_keys')
        results[case['id']] = result
        with open(results_file, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])

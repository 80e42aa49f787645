"""Crafted checkpoints through every loading path: refused with the file named, nothing runs.

The crafted loads run in a subprocess (tests/security_driver.py): one that crashes (a segfault)
fails its test instead of killing pytest. URLs are served by a loopback HTTP server started
here (127.0.0.1 only, bounded in requests and time, stopped at the end of the module).
"""
import copy
import copyreg
import functools
import http.server
import json
import os
import os.path as osp
import subprocess
import sys
import threading
from collections import OrderedDict

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer

from mmstructkd.engine import SafeRunner
from mmstructkd.utils import CorruptCheckpointError, UnsafeCheckpointError, safe_load
from mmstructkd.utils.safe_load import HISTORY_BUFFER_STATISTICS
from tests.conftest import CONFIG_DIR, REPO_ROOT, load_config, save_teacher

#: The driver's module, run from the repository root (``python -m``).
DRIVER = 'tests.security_driver'
#: The loopback server answers at most this many requests and lives at most this long.
MAX_REQUESTS = 400
SERVER_LIFETIME_S = 900


# ---------------------------------------------------------------------- payloads
class OpenFile:
    """Unpickled without weights_only: ``open(marker, 'w')`` creates the marker."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return open, (self.marker, 'w')


class OsSystem:
    """Unpickled without weights_only: ``os.system('touch marker')``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


class CallPartial:
    """A ``functools.partial(open, marker, 'w')`` called while unpickling."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return functools.partial(open, self.marker, 'w'), ()


class GetAttr:
    """``getattr(obj, name)`` while unpickling (obj may itself be a GetAttr)."""

    def __init__(self, obj, name):
        self.obj, self.name = obj, name

    def __reduce__(self):
        return getattr, (self.obj, self.name)


class PoisonedHistoryBuffer:
    """A HistoryBuffer state whose statistics methods would be written into HistoryBuffer's
    class dict by HistoryBuffer.__setstate__ (what mmengine's own pickles look like, with other
    methods)."""

    def __init__(self, methods):
        self.methods = methods

    @property
    def __class__(self):  # what the pickler checks __newobj__'s class against
        return HistoryBuffer

    def __reduce__(self):
        state = dict(max_length=10, _log_history=np.array([1.0, 3.0]),
                     _count_history=np.array([1, 1]), statistics_methods=self.methods)
        return copyreg.__newobj__, (HistoryBuffer, ), state


class ObjectDType:
    """``numpy.dtype('O8')`` built by a bare call (no state to BUILD)."""

    def __reduce__(self):
        return np.dtype, ('O8', False, True)


class RawObjectArray:
    """An object array whose 'pointers' are raw bytes from the file: dereferencing them
    crashes the process."""

    def __reduce__(self):
        return (np.core.multiarray._reconstruct, (np.ndarray, (0, ), b'b'),
                (1, (2, ), ObjectDType(), False, b'\x41' * 16))


class FieldsOnFloatDType:
    """A float64 dtype whose state adds an object field and clears its flags: an array of it
    reads its items as object pointers from raw bytes."""

    def __reduce__(self):
        return (np.dtype, ('f8', False, True),
                (3, '|', None, ('a', ), {'a': (ObjectDType(), 0)}, 8, 1, 0))


class RawStructuredArray:
    def __reduce__(self):
        return (np.core.multiarray._reconstruct, (np.ndarray, (0, ), b'b'),
                (1, (2, ), FieldsOnFloatDType(), False, b'\x41' * 16))


def payload(kind, marker):
    """What a crafted file carries (inside an otherwise valid checkpoint)."""
    if kind == 'open':
        return dict(note=OpenFile(marker))
    if kind == 'system':
        return dict(note=OsSystem(marker))
    if kind == 'partial':
        return dict(note=CallPartial(marker))
    if kind == 'getattr':
        # First widen what a getattr stand-in that reads HistoryBuffer's class dict allows,
        # then walk from an allowed class to module globals; also from torch's own classes.
        return dict(widen=PoisonedHistoryBuffer({'__init__': 1}),
                    chain=[GetAttr(GetAttr(HistoryBuffer, '__init__'), '__globals__'),
                           GetAttr(OrderedDict, 'fromkeys'),
                           GetAttr(torch.Tensor, 'new_tensor')])
    if kind == 'history_buffer':
        return dict(buffer=PoisonedHistoryBuffer({'mean': HistoryBuffer.max,
                                                  'min': HistoryBuffer.min}))
    if kind == 'config':
        # mmengine's Runner.resume runs Config.fromstring(meta['config']): Python code.
        return dict(config=f'open({marker!r}, "w").close()\nx = 1\n')
    if kind == 'object_array':
        return dict(note=[RawStructuredArray(), RawObjectArray()])
    assert kind == 'clean'
    return {}


#: Payloads that are data, not code: they load, and nothing they hold runs.
HARMLESS = ('clean', 'config')


# ---------------------------------------------------------------------- fixtures
class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        with server.count_lock:
            server.requests += 1
            over = server.requests > MAX_REQUESTS
        if over:
            self.send_error(503, 'request limit reached')
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope='module')
def http_root(tmp_path_factory):
    """A folder served at http://127.0.0.1:<port>/ for this module's tests."""
    root = tmp_path_factory.mktemp('served')
    server = http.server.ThreadingHTTPServer(
        ('127.0.0.1', 0), functools.partial(_Handler, directory=str(root)))
    server.requests, server.count_lock = 0, threading.Lock()
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    deadline = threading.Timer(SERVER_LIFETIME_S, server.shutdown)
    deadline.daemon = True
    deadline.start()
    try:
        yield str(root), f'http://127.0.0.1:{server.server_address[1]}'
    finally:
        deadline.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope='module')
def bases(data_roots, tmp_path_factory):
    """A clean teacher checkpoint and a clean 2-iteration distiller training checkpoint."""
    tmp = tmp_path_factory.mktemp('security_bases')
    teacher = save_teacher('tiny_seg_teacher', str(tmp / 'teacher.pth'))
    cfg = load_config('tiny_seg_distill', data_roots['seg'], str(tmp / 'train'),
                      **{'model.teacher_ckpt': teacher, 'train_cfg.max_iters': 2,
                         'train_cfg.val_interval': 100, 'param_scheduler': [],
                         'default_hooks.checkpoint.interval': 2, 'custom_hooks': []})
    cfg.experiment_name = 'security_base'
    SafeRunner.from_cfg(cfg).train()
    return dict(teacher=teacher, training=str(tmp / 'train' / 'iter_2.pth'))


def craft(bases, family, kind, folder, marker):
    """Write ``<family>_<kind>.pth``: the clean checkpoint of ``family`` with the payload."""
    checkpoint = copy.copy(safe_load(bases[family]))
    checkpoint['meta'] = dict(checkpoint.get('meta') or {}, **payload(kind, marker))
    path = osp.join(folder, f'{family}_{kind}.pth')
    torch.save(checkpoint, path)  # a full pickle: HistoryBuffers as mmengine pickles them
    return path


#: Loading path -> (family of checkpoint it loads, local or URL, payloads it gets). The paths
#: through a runner (slow to build) get fewer: every payload meets the same loader there.
ALL = ('clean', 'config', 'open', 'system', 'partial', 'getattr', 'history_buffer')
PATHS = dict(teacher=('teacher', False, ALL), teacher_url=('teacher', True, ALL),
             export=('training', False, ALL),
             test_tool=('training', False, ('clean', 'open', 'history_buffer')),
             test_tool_url=('training', True, ('clean', 'partial', 'getattr')),
             resume=('training', False, ('clean', 'config', 'system', 'history_buffer')),
             auto_resume=('training', False, ('open', 'getattr')),
             pretrained=('teacher', True, ('open', 'history_buffer')))


def run_driver(cases, bases, data_roots, tmp_path, http_root):
    spec = dict(config_dir=CONFIG_DIR, data_root=data_roots['seg'], teacher_ckpt=bases['teacher'],
                work_root=str(tmp_path / 'work'), cases=cases)
    spec_file, results_file = str(tmp_path / 'spec.json'), str(tmp_path / 'results.json')
    with open(spec_file, 'w') as f:
        json.dump(spec, f)
    env = dict(os.environ, TORCH_HOME=str(tmp_path / 'torch_home'), OMP_NUM_THREADS='1',
               no_proxy='127.0.0.1,localhost', NO_PROXY='127.0.0.1,localhost')
    result = subprocess.run([sys.executable, '-m', DRIVER, spec_file, results_file],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    results = json.load(open(results_file)) if osp.isfile(results_file) else {}
    assert result.returncode == 0, (
        f'the driver died with exit code {result.returncode} after cases {list(results)}: '
        f'{result.stderr[-3000:]}')
    return results


def make_cases(kinds, bases, tmp_path, http_root, paths=None):
    """``kinds`` None: each path's own payloads; ``paths`` None: every path."""
    served, url = http_root
    cases = []
    for path, (family, remote, own) in PATHS.items():
        if paths is not None and path not in paths:
            continue
        for kind in kinds or own:
            case_id = f'{path}-{kind}'
            marker = str(tmp_path / f'marker-{case_id}')
            file = craft(bases, family, kind, served, marker)
            name = osp.basename(file)
            if remote:
                file = f'{url}/{name}'
            cases.append(dict(id=case_id, path=path, kind=kind, file=file, marker=marker,
                              expect_name='iter_2.pth' if path == 'auto_resume' else name))
    return cases


def check(cases, results):
    for case in cases:
        r = results[case['id']]
        where = f"{case['id']}: {r['message'][:300]}"
        assert not r['marker'], f'{where}: code from the checkpoint ran'
        assert r['statistics_unchanged'], f'{where}: HistoryBuffer statistics changed'
        if case['kind'] in HARMLESS:
            assert r['loaded'], f"{where}\n{r.get('traceback')}"
        else:
            assert not r['loaded'], f'{where}: loaded'
            assert r['error_type'] == 'UnsafeCheckpointError', f"{where}\n{r.get('traceback')}"
            assert case['expect_name'] in r['message'], where
            assert 'weights_only=False' not in r['message'], where
        if case['path'] == 'export' and r['loaded']:
            assert not {'config', 'cfg'} & set(r['exported_meta_keys']), where


# ---------------------------------------------------------------------- tests
@pytest.fixture(scope='module')
def driven(bases, data_roots, tmp_path_factory, http_root):
    """Every crafted case through its loading path, in one driver process (a crash fails the
    tests below, not pytest)."""
    tmp = tmp_path_factory.mktemp('driven')
    code = make_cases(None, bases, tmp, http_root)
    arrays = make_cases(('object_array', ), bases, tmp, http_root,
                        paths=('teacher', 'teacher_url', 'export', 'test_tool', 'resume',
                               'pretrained'))
    return dict(code=code, arrays=arrays,
                results=run_driver(code + arrays, bases, data_roots, tmp, http_root))


def test_crafted_checkpoints_are_refused_on_every_loading_path(driven):
    check(driven['code'], driven['results'])


def test_object_arrays_from_raw_bytes_are_refused_on_every_loading_path(driven):
    check(driven['arrays'], driven['results'])


@pytest.fixture(scope='module')
def fresh_process(tmp_path_factory):
    """A new Python process: torch's, mmengine's and numpy's global state before and after
    ``import mmstructkd`` and a safe_load; then a plain ``torch.load`` of an object array."""
    tmp = tmp_path_factory.mktemp('fresh_process')
    plain, array = str(tmp / 'plain.pth'), str(tmp / 'object_array.pth')
    torch.save(dict(a=torch.zeros(1)), plain)
    torch.save(dict(note=RawStructuredArray()), array)
    code = f'''
import pickle
import numpy as np, torch
import torch._dynamo  # torch adds its own entries to its list when this is first imported
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader
def state():
    return (set(torch.serialization.get_safe_globals()),
            dict(HistoryBuffer._statistics_methods), dict(CheckpointLoader._schemes),
            np.get_printoptions())
before = state()
import mmstructkd
from mmstructkd.utils import safe_load
after_import = state()
safe_load({plain!r})  # the stand-ins are on torch's list only during the load
after_load = state()
print('import:', 'unchanged' if after_import == before else (before, after_import), flush=True)
print('load:', 'unchanged' if after_load == before else (before, after_load), flush=True)
try:
    data = torch.load({array!r}, weights_only=True)
    print('plain load:', data['note']['a'], flush=True)  # reads raw bytes as object pointers
except pickle.UnpicklingError:
    print('plain load: refused', flush=True)
'''
    return subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300)


def test_import_changes_no_global_state(fresh_process):
    out = fresh_process.stdout
    assert 'import: unchanged' in out, out[-3000:] + fresh_process.stderr[-3000:]
    assert 'load: unchanged' in out, out[-3000:]


def test_plain_torch_load_after_import_refuses_object_arrays(fresh_process):
    """Nothing of mmstructkd's allow-list leaks into other torch.load calls of the process
    (a global allow-list of numpy's reconstructors let this crash any caller)."""
    assert fresh_process.returncode == 0, (
        f'exit code {fresh_process.returncode}: {fresh_process.stderr[-2000:]}')
    assert 'plain load: refused' in fresh_process.stdout


def test_the_scoped_allow_list_keeps_what_the_user_allowed(tmp_path):
    class Mine:
        pass

    from mmstructkd.utils.safe_load import scoped_allow_list
    original = torch.serialization.get_safe_globals()
    # the real numpy.dtype under the name of one of our stand-ins: set aside while we load
    torch.serialization.add_safe_globals([Mine, np.dtype])
    try:
        before = set(torch.serialization.get_safe_globals())  # torch keeps a set
        path = str(tmp_path / 'x.pth')
        torch.save(dict(a=torch.ones(2)), path)
        assert torch.equal(safe_load(path)['a'], torch.ones(2))
        assert set(torch.serialization.get_safe_globals()) == before
        with scoped_allow_list():
            during = torch.serialization.get_safe_globals()
            assert Mine in during and not any(e is np.dtype for e in during)
            assert [e[1] for e in during if isinstance(e, tuple)].count('numpy.dtype') == 1
            with scoped_allow_list():  # a nested block leaves the stand-ins to the outer one
                pass
            assert set(torch.serialization.get_safe_globals()) == set(during)
            # meanwhile someone else adds dict and removes Mine (their safe_globals block ends)
            others = [g for g in during if g is not Mine] + [dict]
            torch.serialization.clear_safe_globals()
            torch.serialization.add_safe_globals(others)
        assert set(torch.serialization.get_safe_globals()) == before - {Mine} | {dict}
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(original)
    assert HISTORY_BUFFER_STATISTICS == frozenset(('min', 'max', 'current', 'mean'))


def test_history_buffers_round_trip_through_both_formats(tmp_path):
    from mmstructkd.utils.safe_load import encode_state
    buffer = HistoryBuffer([1.0, 2.5, 4.0], [1, 2, 1], max_length=7)
    state = dict(hub=dict(loss=buffer), scalar=np.float64(0.25), arr=np.arange(3, dtype='u1'))
    for name, obj in (('legacy', state), ('plain', encode_state(state))):
        path = str(tmp_path / f'{name}.pth')
        torch.save(obj, path)
        loaded = safe_load(path)
        restored = loaded['hub']['loss']
        assert type(restored) is HistoryBuffer, name
        assert restored.max_length == 7
        np.testing.assert_array_equal(restored.data[0], buffer.data[0])
        np.testing.assert_array_equal(restored.data[1], buffer.data[1])
        assert restored.statistics('mean') == buffer.mean()
        assert loaded['scalar'] == 0.25 and loaded['arr'].dtype == np.uint8
    # The plain format needs no allow-list at all.
    plain = torch.load(str(tmp_path / 'plain.pth'), weights_only=True)
    assert plain['hub']['loss']['max_length'] == 7


@pytest.mark.parametrize('content', [b'', b'not a checkpoint' * 10, 'truncated'])
def test_an_unreadable_checkpoint_is_named_without_unsafe_advice(content, tmp_path):
    path = str(tmp_path / 'teacher.pth')
    if content == 'truncated':
        torch.save(dict(state_dict=dict(w=torch.randn(64, 64))), path)
        with open(path, 'rb') as f:
            data = f.read()
        content = data[:len(data) // 2]
    with open(path, 'wb') as f:
        f.write(content)
    with pytest.raises(CorruptCheckpointError) as info:
        safe_load(path, role='teacher checkpoint')
    assert path in str(info.value) and 'weights_only=False' not in str(info.value)


def test_random_bytes_as_teacher_checkpoint(tmp_path):
    from tests.conftest import build_tiny_model as build
    from mmstructkd.utils import load_teacher_checkpoint
    path = str(tmp_path / 'random.pth')
    with open(path, 'wb') as f:
        f.write(np.random.default_rng(0).bytes(4096))
    with pytest.raises((CorruptCheckpointError, UnsafeCheckpointError)) as info:
        load_teacher_checkpoint(build('tiny_seg_teacher'), path)
    assert path in str(info.value) and 'weights_only=False' not in str(info.value)


def test_scoped_checkpoint_loaders_closing_out_of_order_keep_the_safe_table():
    """Two runners in two threads: the first to finish must not put mmengine's own (unsafe)
    table back while the other still trains; the last to finish puts it back unchanged."""
    from mmengine.runner.checkpoint import CheckpointLoader

    from mmstructkd.utils.safe_load import scoped_checkpoint_loader
    original = CheckpointLoader._schemes
    first, second = scoped_checkpoint_loader(), scoped_checkpoint_loader()
    first.__enter__()
    second.__enter__()
    try:
        first.__exit__(None, None, None)  # closes before the other
        names = {f.__name__ for f in CheckpointLoader._schemes.values()}
        assert names == {'load_from_mmstructkd_safe_loader'}
    finally:
        second.__exit__(None, None, None)
    assert CheckpointLoader._schemes is original

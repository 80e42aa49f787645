import pytest
import torch
from mmengine.config import Config

from mmstructkd.utils import UnsafeCheckpointError, load_teacher_checkpoint, safe_load
from tests.conftest import build_tiny_model as build


def test_matching_checkpoint_loads_on_cpu(tmp_path):
    teacher, source = build('tiny_seg_teacher'), build('tiny_seg_teacher')
    path = str(tmp_path / 't.pth')
    torch.save(dict(state_dict={f'module.{k}': v for k, v in source.state_dict().items()}),
               path)
    load_teacher_checkpoint(teacher, path)
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, source.state_dict()[k])


def test_checkpoint_of_another_model_is_refused(tmp_path):
    path = str(tmp_path / 'student.pth')
    torch.save(dict(state_dict=build('tiny_seg_student').state_dict()), path)
    with pytest.raises(ValueError, match='shape mismatch.*Is it the checkpoint of this teacher'):
        load_teacher_checkpoint(build('tiny_seg_teacher'), path)


def test_missing_keys_are_errors_unless_not_strict(tmp_path):
    teacher = build('tiny_seg_teacher')
    state = teacher.state_dict()
    del state['decode_head.conv_seg.weight']
    state['extra.weight'] = torch.zeros(1)
    path = str(tmp_path / 't.pth')
    torch.save(dict(state_dict=state), path)
    with pytest.raises(ValueError, match=r'missing keys: \[decode_head.conv_seg.weight\]; '
                       r'unexpected keys: \[extra.weight\].*teacher_ckpt_strict=False'):
        load_teacher_checkpoint(build('tiny_seg_teacher'), path)
    load_teacher_checkpoint(build('tiny_seg_teacher'), path, strict=False)


def test_missing_file_and_distiller_checkpoint_have_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='teacher checkpoint "nope.pth" does not exist'):
        load_teacher_checkpoint(build('tiny_seg_teacher'), 'nope.pth')
    path = str(tmp_path / 'distiller.pth')
    torch.save(dict(state_dict={'student.w': torch.zeros(1), 'teacher.w': torch.zeros(1)}), path)
    with pytest.raises(ValueError, match='export_student.py'):
        load_teacher_checkpoint(build('tiny_seg_teacher'), path)


def test_arbitrary_pickled_objects_are_refused_with_the_file_named(tmp_path):
    """The safe loader builds tensors and plain data: a Config object is refused."""
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, payload=Config(dict(a=1))), path)
    with pytest.raises(UnsafeCheckpointError, match='Unsupported global') as info:
        load_teacher_checkpoint(build('tiny_seg_teacher'), path)
    assert path in str(info.value) and 'weights_only=False' not in str(info.value)


class _GetattrPayload:
    """Pickles as getattr(obj, name), as mmengine pickles HistoryBuffer's statistics."""

    def __init__(self, obj, name):
        self.obj, self.name = obj, name

    def __reduce__(self):
        return getattr, (self.obj, self.name)


class _BufferState:
    """A HistoryBuffer pickled as mmengine does, with the given statistics methods."""

    def __init__(self, methods):
        self.methods = methods

    @property
    def __class__(self):  # what the pickler checks __newobj__'s class against
        from mmengine.logging import HistoryBuffer
        return HistoryBuffer

    def __reduce__(self):
        import copyreg

        import numpy as np
        from mmengine.logging import HistoryBuffer
        return copyreg.__newobj__, (HistoryBuffer, ), dict(
            max_length=5, _log_history=np.array([2.0, 4.0]), _count_history=np.array([1, 1]),
            statistics_methods=self.methods)


def test_getattr_reaches_only_history_buffer_statistics_inside_a_buffer(tmp_path):
    from mmengine.logging import HistoryBuffer
    path = str(tmp_path / 'ok.pth')
    torch.save(dict(state_dict=build('tiny_seg_teacher').state_dict(),
                    hub=_BufferState({n: _GetattrPayload(HistoryBuffer, n)
                                      for n in ('min', 'max', 'current', 'mean')})), path)
    buffer = safe_load(path)['hub']
    assert type(buffer) is HistoryBuffer and buffer.statistics('mean') == 3.0
    load_teacher_checkpoint(build('tiny_seg_teacher'), path)  # a teacher file may hold one
    for name, obj in (('evil1', _GetattrPayload(HistoryBuffer, '__init__')),
                      ('evil2', _GetattrPayload(HistoryBuffer, 'mean')),  # outside a buffer
                      ('evil3', _BufferState({'mean': _GetattrPayload(HistoryBuffer, 'max')}))):
        path = str(tmp_path / f'{name}.pth')
        torch.save(dict(x=obj), path)
        with pytest.raises(UnsafeCheckpointError, match=name):
            safe_load(path)
    assert HistoryBuffer([1.0, 3.0], [1, 1]).statistics('mean') == 2.0


def test_teacher_checkpoint_by_url_is_downloaded_then_loaded_safely(tmp_path, monkeypatch):
    """A URL goes to the torch hub cache and through the same weights_only=True load."""
    import functools
    import http.server
    import threading
    served = tmp_path / 'served'
    served.mkdir()
    source = build('tiny_seg_teacher')
    torch.save(dict(state_dict=source.state_dict()), str(served / 'teacher.pth'))
    torch.save(dict(state_dict=source.state_dict(), x=Config(dict(a=1))),
               str(served / 'evil.pth'))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.HTTPServer(('127.0.0.1', 0), handler)
    server.timeout = 30
    thread = threading.Thread(target=lambda: [server.handle_request() for _ in range(2)],
                              daemon=True)
    thread.start()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setenv('no_proxy', '127.0.0.1')
    url = f'http://127.0.0.1:{server.server_address[1]}'
    try:
        teacher = build('tiny_seg_teacher')
        load_teacher_checkpoint(teacher, f'{url}/teacher.pth')
        for k, v in teacher.state_dict().items():
            assert torch.equal(v, source.state_dict()[k])
        assert (tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'teacher.pth').is_file()
        with pytest.raises(UnsafeCheckpointError, match=f'{url}/evil.pth'):
            load_teacher_checkpoint(build('tiny_seg_teacher'), f'{url}/evil.pth')
    finally:
        thread.join(timeout=30)
        server.server_close()

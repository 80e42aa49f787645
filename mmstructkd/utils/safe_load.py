"""The one loader for everything mmstructkd reads with ``torch.load``: ``weights_only=True``,
always, with a scoped allow-list of inert stand-ins.

Teacher checkpoints, ``--resume``, ``tools/test.py``, ``tools/export_student.py``, the teacher
cache and the compression tool all load through :func:`safe_load`. URLs are downloaded to the
torch hub cache first and then loaded from that file the same way (never through
``torch.hub.load_state_dict_from_url``, which loads with ``weights_only=False``).

What an mmengine checkpoint holds beyond tensors and plain Python values:

- the message hub's ``mmengine.logging.HistoryBuffer`` objects, whose pickled state carries
  numpy arrays and the buffer's statistics methods (pickled as ``getattr(HistoryBuffer,
  'mean')``), and whose own ``__setstate__`` writes what it finds into a dict of the *class*;
- numpy arrays and scalars (in the message hub, sometimes in ``meta``).

None of those classes or functions is put on torch's allow-list. Their pickle names are bound,
for the duration of one of our loads only (:func:`scoped_allow_list`), to stand-ins defined
here that accept exactly the shapes of data mmengine writes and refuse everything else:

- ``numpy.dtype`` builds numeric dtypes only (bool, int, uint, float, complex; no object,
  structured or sub-array dtypes), ``..._reconstruct`` + the array's state build a numeric
  array from its bytes (length checked), ``...scalar`` a numeric scalar; ``numpy.ndarray``
  is a token that cannot be called or instantiated;
- ``HistoryBuffer`` becomes a state holder that checks its fields (numeric 1-D histories of
  equal length, a positive ``max_length``, statistics methods that are exactly mmengine's
  built-in ``min``/``max``/``current``/``mean``) and is turned into a real ``HistoryBuffer``
  only after the load, without running ``HistoryBuffer.__setstate__``: loaded data can change
  no class attribute;
- ``builtins.getattr`` returns a reference to one of those four statistics methods of
  ``HistoryBuffer`` (a fixed frozenset, not read from the class) and refuses any other lookup.

Checkpoints written by :class:`mmstructkd.engine.SafeRunner` need none of this: it stores the
message hub's buffers and numpy values as tensors in plain dicts (:func:`encode_state`), which
torch's default ``weights_only=True`` loads, and :func:`safe_load` turns them back.
"""
import contextlib
import hashlib
import io
import math
import os
import os.path as osp
import pickle
import re
import threading
import urllib.parse
import urllib.request
from collections import Counter, OrderedDict
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np
import torch

__all__ = [
    'CheckpointError', 'UnsafeCheckpointError', 'CorruptCheckpointError', 'safe_load',
    'scoped_allow_list', 'scoped_checkpoint_loader', 'download_checkpoint', 'encode_state',
    'decode_state', 'is_url', 'HISTORY_BUFFER_STATISTICS'
]


class CheckpointError(RuntimeError):
    """A checkpoint could not be loaded; the message names the file."""


class UnsafeCheckpointError(CheckpointError):
    """The checkpoint asks for objects the safe loader does not build (possibly code)."""


class CorruptCheckpointError(CheckpointError):
    """The file is empty, truncated, corrupt or not written by ``torch.save``."""


class _Refused(Exception):
    """Raised by the stand-ins while unpickling (not an ``UnpicklingError``, so that torch
    passes it through unchanged); :func:`safe_load` turns it into ``UnsafeCheckpointError``."""


#: The statistics methods mmengine's HistoryBuffer pickles (``getattr(HistoryBuffer, name)``).
#: Fixed here: nothing a checkpoint contains can add a name.
HISTORY_BUFFER_STATISTICS = frozenset(('min', 'max', 'current', 'mean'))

#: numpy dtype codes the stand-ins build: bool, signed/unsigned ints, floats, complex.
_NUMERIC_DTYPE = re.compile(r'^(b1|[iu][1248]|f[248]|c(8|16))$')
_NUMERIC_KINDS = frozenset('biufc')
#: Keys of the plain-dict encoding (:func:`encode_state`).
_TAG = '__mmstructkd_state__'


def _numeric_dtype(spec: Any) -> np.dtype:
    if not isinstance(spec, str) or not _NUMERIC_DTYPE.match(spec):
        raise _Refused(f'a numpy dtype {spec!r}: only numeric dtypes (bool, int, uint, float, '
                       'complex) are loaded, never object or structured ones')
    dtype = np.dtype(spec)
    if dtype.kind not in _NUMERIC_KINDS or dtype.hasobject or dtype.fields is not None \
            or dtype.subdtype is not None:
        raise _Refused(f'a numpy dtype {spec!r} that is not a plain numeric dtype')
    return dtype


class _DTypeState:
    """Stands in for ``numpy.dtype`` (pickled as ``dtype(code, align, copy)`` + state)."""

    _dtype: Optional[np.dtype] = None
    _built = False

    def __init__(self, spec: Any = None, align: Any = False, copy: Any = True) -> None:
        if not isinstance(align, bool) or not isinstance(copy, bool):
            raise _Refused('numpy.dtype with arguments other than (code, bool, bool)')
        self._dtype = _numeric_dtype(spec)

    def __setstate__(self, state: Any) -> None:
        if self._dtype is None or self._built:
            raise _Refused('a numpy dtype state without its dtype')
        # numpy writes (3, byteorder, subarray, names, fields, elsize, alignment, flags);
        # a version-4 state adds metadata. Numeric dtypes have no subarray/names/fields and
        # flags 0.
        if not isinstance(state, tuple) or len(state) not in (8, 9) or state[0] not in (3, 4) \
                or state[1] not in ('<', '>', '|', '=') or state[2:5] != (None, None, None) \
                or state[5:8] != (-1, -1, 0) or (len(state) == 9 and state[8] is not None):
            raise _Refused(f'a numpy dtype state {state!r:.200} other than a plain numeric one')
        if state[1] in ('<', '>'):
            self._dtype = self._dtype.newbyteorder(state[1])
        self._built = True

    @property
    def dtype(self) -> np.dtype:
        if self._dtype is None:
            raise _Refused('an incomplete numpy dtype')
        return self._dtype


class _NdarrayToken:
    """Stands in for ``numpy.ndarray``: only a marker passed to ``_reconstruct``; it cannot be
    called or instantiated (``numpy.ndarray(shape, 'O')`` would make an object array)."""

    def __new__(cls, *args, **kwargs):
        raise _Refused('a call of numpy.ndarray')


class _ArrayState:
    """What ``numpy.core.multiarray._reconstruct`` returns here: holds a numeric array built
    from the pickled state (checked) until the load finishes."""

    _array: Optional[np.ndarray] = None

    def __setstate__(self, state: Any) -> None:
        if self._array is not None:
            raise _Refused('a numpy array state applied twice')
        if not isinstance(state, tuple) or len(state) != 5 or state[0] != 1:
            raise _Refused('a numpy array state other than (1, shape, dtype, fortran, bytes)')
        _, shape, dtype, fortran, data = state
        if not isinstance(dtype, _DTypeState):
            raise _Refused(f'a numpy array whose dtype is a {type(dtype).__name__}')
        if not isinstance(shape, tuple) or not all(
                type(n) is int and n >= 0 for n in shape) or len(shape) > 32:
            raise _Refused(f'a numpy array with shape {shape!r:.100}')
        if not isinstance(fortran, bool) or not isinstance(data, (bytes, bytearray)):
            raise _Refused('a numpy array whose data are not raw bytes (an object array?)')
        dt = dtype.dtype
        if len(data) != math.prod(shape) * dt.itemsize:
            raise _Refused(f'a numpy array of shape {shape} and dtype {dt} with '
                           f'{len(data)} bytes of data')
        self._array = np.frombuffer(bytes(data), dtype=dt).reshape(
            shape, order='F' if fortran else 'C').copy()

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            raise _Refused('a numpy array without its data')
        return self._array


def _reconstruct(subtype: Any, shape: Any, typecode: Any) -> _ArrayState:
    """Stands in for ``numpy.core.multiarray._reconstruct`` (what ndarray pickles call)."""
    if subtype is not _NdarrayToken or shape != (0, ) or typecode != b'b':
        raise _Refused('numpy _reconstruct with arguments other than (ndarray, (0,), b"b")')
    return _ArrayState()


def _scalar(dtype: Any, data: Any = None) -> np.generic:
    """Stands in for ``numpy.core.multiarray.scalar``: a numeric numpy scalar from bytes."""
    if not isinstance(dtype, _DTypeState) or not isinstance(data, (bytes, bytearray)) \
            or len(data) != dtype.dtype.itemsize:
        raise _Refused('a numpy scalar other than a numeric one from its bytes')
    return np.frombuffer(bytes(data), dtype=dtype.dtype, count=1)[0]


class _StatisticRef:
    """What ``getattr(HistoryBuffer, name)`` gives while loading: a name, nothing callable
    (and not on the allow-list: a pickle cannot build one otherwise)."""

    __slots__ = ('name', )

    def __init__(self, name: str) -> None:
        self.name = name


class _HistoryBufferState:
    """Stands in for ``mmengine.logging.HistoryBuffer`` while loading; checked by
    ``__setstate__`` and turned into a real HistoryBuffer (never through
    ``HistoryBuffer.__setstate__``, which writes into the class) after the load."""

    _state: Optional[dict] = None

    def __setstate__(self, state: Any) -> None:
        if self._state is not None:
            raise _Refused('a HistoryBuffer state applied twice')
        if not isinstance(state, dict):
            raise _Refused('a HistoryBuffer state that is not a dict')
        expected = {'max_length', '_log_history', '_count_history'}
        unknown = set(state) - expected - {'statistics_methods'}
        if not expected <= set(state) or unknown:
            raise _Refused(f'a HistoryBuffer state with keys {sorted(map(str, state))}')
        methods = state.get('statistics_methods', {})
        if not isinstance(methods, dict) or any(
                not isinstance(ref, _StatisticRef) or ref.name != name
                for name, ref in methods.items()):
            raise _Refused('a HistoryBuffer whose statistics methods are not exactly '
                           f'mmengine\'s built-in {sorted(HISTORY_BUFFER_STATISTICS)} '
                           '(a checkpoint that would change HistoryBuffer.statistics)')
        self._state = state

    def build(self, resolve: Callable[[Any], Any]):
        if self._state is None:
            raise _Refused('a HistoryBuffer without its state')
        return _make_history_buffer(resolve(self._state['_log_history']),
                                    resolve(self._state['_count_history']),
                                    self._state['max_length'])


def _history_buffer_getattr(obj: Any, name: Any) -> _StatisticRef:
    """Stands in for ``builtins.getattr``: only ``getattr(HistoryBuffer, <built-in statistic>)``
    (how mmengine pickles the statistics methods); any other lookup is refused."""
    if obj is _HistoryBufferState and type(name) is str and name in HISTORY_BUFFER_STATISTICS:
        return _StatisticRef(name)
    raise _Refused(f'getattr({getattr(obj, "__name__", type(obj).__name__)}, {name!r:.60}): '
                   'only the HistoryBuffer statistics methods mmengine checkpoints hold '
                   f'({sorted(HISTORY_BUFFER_STATISTICS)}) are looked up')


def _make_history_buffer(log: Any, count: Any, max_length: Any):
    from mmengine.logging import HistoryBuffer
    if type(max_length) is not int or max_length <= 0:
        raise _Refused(f'a HistoryBuffer with max_length {max_length!r:.60}')
    for what, arr in (('log', log), ('count', count)):
        if not isinstance(arr, np.ndarray) or arr.ndim != 1 or arr.dtype.kind not in \
                _NUMERIC_KINDS or arr.dtype.hasobject:
            raise _Refused(f'a HistoryBuffer whose {what} history is not a numeric 1-D array')
    if len(log) != len(count) or len(log) > max_length:
        raise _Refused('a HistoryBuffer with histories of different lengths or longer than '
                       'its max_length')
    buffer = HistoryBuffer.__new__(HistoryBuffer)
    # What __init__ sets (its _set_default_statistics only re-adds the built-ins).
    buffer._set_default_statistics()
    buffer.max_length = max_length
    buffer._log_history = log
    buffer._count_history = count
    return buffer


def _allow_list() -> List[Tuple[Any, str]]:
    entries: List[Tuple[Any, str]] = [
        (_history_buffer_getattr, 'builtins.getattr'),
        (_HistoryBufferState, 'mmengine.logging.history_buffer.HistoryBuffer'),
        (_NdarrayToken, 'numpy.ndarray'),
        (_DTypeState, 'numpy.dtype'),
        # A BUILD needs the type of what _reconstruct returned on the list; under a name
        # numpy never writes (a pickle that names it directly gets an empty holder).
        (_ArrayState, f'{__name__}._ArrayState'),
    ]
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):  # numpy 1.x / 2.x
        entries += [(_reconstruct, f'{module}._reconstruct'), (_scalar, f'{module}.scalar')]
    return entries


_ALLOW_LIST = tuple(_allow_list())
_SCOPE_LOCK = threading.RLock()
_SCHEMES_LOCK = threading.Lock()
#: How many scoped_checkpoint_loader blocks are open, and mmengine's table while any is.
_SCHEMES_SCOPE: Dict[str, Any] = dict(depth=0)


@contextlib.contextmanager
def scoped_allow_list() -> Iterator[None]:
    """Put the stand-ins on torch's ``weights_only`` allow-list for the duration of the block.

    A user's entries under the names of ours (the real ``numpy.dtype`` or ``_reconstruct``
    allowed by hand) are set aside for the block: torch picks among entries of one name in no
    fixed order, and our loads must get the checked stand-ins. Afterwards torch's list is what
    it was before, plus whatever others added meanwhile (``torch.serialization.safe_globals``
    would remove entries a user had added). The list is process-wide while the block runs; a
    lock keeps our loads from interleaving.
    """
    serialization = torch.serialization
    if not hasattr(serialization, 'add_safe_globals'):  # torch < 2.4: no allow-list at all
        raise CheckpointError('mmstructkd needs torch >= 2.4 (torch.serialization.'
                              'add_safe_globals) to load checkpoints safely.')
    ours = {_entry_name(entry) for entry in _ALLOW_LIST}
    with _SCOPE_LOCK:
        present = serialization.get_safe_globals()
        set_aside = [g for g in present if _entry_name(g) in ours and g not in _ALLOW_LIST]
        added = [g for g in _ALLOW_LIST if g not in present]  # a nested block adds nothing
        serialization.clear_safe_globals()
        serialization.add_safe_globals(
            [g for g in present if g not in set_aside] + added)
        try:
            yield
        finally:
            # what is there now (others' additions and removals meanwhile kept), less what
            # this block added, plus what it set aside
            now = serialization.get_safe_globals()
            serialization.clear_safe_globals()
            serialization.add_safe_globals([g for g in now if g not in added] + set_aside)


def _entry_name(entry: Any) -> str:
    """The name torch's allow-list knows an entry by (``(obj, name)`` or ``module.qualname``)."""
    if isinstance(entry, tuple):
        return entry[1]
    return f'{getattr(entry, "__module__", None)}.{getattr(entry, "__qualname__", None)}'


# ---------------------------------------------------------------------- plain-dict encoding
def encode_state(obj: Any) -> Any:
    """Replace ``HistoryBuffer`` objects, numpy arrays and numpy scalars in ``obj`` (dicts,
    lists, tuples) by plain dicts of tensors that torch's default ``weights_only=True`` loads;
    :func:`decode_state` (and :func:`safe_load`) turns them back. Other values are kept."""
    from mmengine.logging import HistoryBuffer
    if isinstance(obj, HistoryBuffer):
        log, count = obj.data
        return {_TAG: 'HistoryBuffer', 'log': _array_to_tensor(log),
                'count': _array_to_tensor(count), 'max_length': int(obj.max_length)}
    if isinstance(obj, np.ndarray) and obj.dtype.kind in _NUMERIC_KINDS and not obj.dtype.fields:
        return {_TAG: 'ndarray', 'data': _array_to_tensor(obj)}
    if isinstance(obj, np.ndarray):  # object or string arrays: as (nested) lists
        return [encode_state(x) for x in obj.tolist()]
    if isinstance(obj, np.generic):
        return {_TAG: 'numpy_scalar', 'data': _array_to_tensor(np.asarray(obj))} \
            if obj.dtype.kind in _NUMERIC_KINDS else obj.item()
    if isinstance(obj, dict):
        items = ((k, encode_state(v)) for k, v in obj.items())
        encoded = OrderedDict(items) if isinstance(obj, OrderedDict) else dict(items)
        if hasattr(obj, '_metadata'):  # a module state dict's version information
            encoded._metadata = obj._metadata
        return encoded
    if type(obj) in (list, tuple):  # (subclasses such as torch.Size are kept as they are)
        return type(obj)(encode_state(x) for x in obj)
    return obj


def _array_to_tensor(array: np.ndarray) -> torch.Tensor:
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)  # (it would also make a 0-d array 1-d)
    if array.dtype.byteorder == '>':
        array = array.astype(array.dtype.newbyteorder('='))
    return torch.from_numpy(array).clone()


def _tensor_to_array(tensor: Any, what: str) -> np.ndarray:
    if type(tensor) is not torch.Tensor:
        raise _Refused(f'an encoded {what} without its tensor')
    try:
        return tensor.detach().cpu().numpy()
    except (TypeError, RuntimeError):
        raise _Refused(f'an encoded {what} of dtype {tensor.dtype}') from None


def decode_state(obj: Any) -> Any:
    """Undo :func:`encode_state` (also applied by :func:`safe_load`)."""
    return _resolve(obj, {})


def _decode_tagged(obj: dict, resolve: Callable[[Any], Any]) -> Any:
    kind = obj[_TAG]
    if kind == 'HistoryBuffer' and set(obj) == {_TAG, 'log', 'count', 'max_length'}:
        return _make_history_buffer(_tensor_to_array(obj['log'], kind),
                                    _tensor_to_array(obj['count'], kind), obj['max_length'])
    if kind == 'ndarray' and set(obj) == {_TAG, 'data'}:
        return _tensor_to_array(obj['data'], kind)
    if kind == 'numpy_scalar' and set(obj) == {_TAG, 'data'}:
        array = _tensor_to_array(obj['data'], kind)
        if array.ndim != 0:
            raise _Refused('an encoded numpy scalar that is not 0-d')
        return array[()]
    raise _Refused(f'an encoded value {kind!r:.60} with keys {sorted(map(str, obj))}')


def _resolve(obj: Any, memo: Dict[int, Any]) -> Any:
    """Replace the stand-ins' holders (and the plain-dict encoding) by the objects they stand
    for, keeping shared references and cycles of the loaded structure."""
    key = id(obj)
    if key in memo:
        return memo[key]

    def resolve(x):
        return _resolve(x, memo)

    kind = type(obj)
    if kind is _ArrayState:
        result = obj.array
    elif kind is _DTypeState:
        result = obj.dtype
    elif kind is _HistoryBufferState:
        result = obj.build(resolve)
    elif kind is _StatisticRef:
        raise _Refused('a HistoryBuffer statistics method outside a HistoryBuffer')
    elif kind in (dict, OrderedDict, Counter):
        if _TAG in obj:
            result = _decode_tagged(obj, resolve)
        else:
            memo[key] = obj
            for k in list(obj):
                if type(k) in (_ArrayState, _DTypeState, _HistoryBufferState, _StatisticRef):
                    raise _Refused('a numpy or HistoryBuffer object as a dict key')
                obj[k] = resolve(obj[k])
            return obj
    elif kind is list:
        memo[key] = obj
        obj[:] = [resolve(x) for x in obj]
        return obj
    elif kind is tuple:
        result = tuple(resolve(x) for x in obj)
    elif kind is set:
        result = {resolve(x) for x in obj}
    else:
        return obj
    memo[key] = result
    return result


# ---------------------------------------------------------------------- sources
_URL = re.compile(r'^(https?)://', re.IGNORECASE)
_MODEL_ZOO = re.compile(r'^(torchvision|modelzoo|open-?mmlab|mmcls)://')


def is_url(path: str) -> bool:
    """Whether ``path`` is fetched rather than read from disk (``http(s)://`` or one of
    mmengine's model-zoo schemes)."""
    return bool(_URL.match(path) or _MODEL_ZOO.match(path))


def _zoo_url(path: str) -> str:
    """The download URL behind ``torchvision://``, ``open-mmlab://`` and ``mmcls://``."""
    from mmengine.runner import checkpoint as mm_ckpt
    scheme, name = path.split('://', 1)
    if scheme in ('torchvision', 'modelzoo'):
        urls = mm_ckpt.get_torchvision_models()
    elif scheme == 'mmcls':
        urls = mm_ckpt.get_mmcls_models()
    else:
        name = mm_ckpt.get_deprecated_model_names().get(name, name)
        urls = mm_ckpt.get_external_models()
    if name not in urls:
        raise FileNotFoundError(f'checkpoint "{path}": no model "{name}" is known for '
                                f'{scheme}://.')
    url = urls[name]
    if not _URL.match(url):  # open-mmlab:// entries may be files under the mmengine home
        return osp.join(mm_ckpt._get_mmengine_home(), url)
    return url


def _cache_path(url: str) -> str:
    name = osp.basename(urllib.parse.urlparse(url).path) or \
        hashlib.sha256(url.encode()).hexdigest()[:16] + '.pth'
    return osp.join(torch.hub.get_dir(), 'checkpoints', name)


def _fetch(url: str, dst: str, timeout: float) -> None:
    os.makedirs(osp.dirname(dst), exist_ok=True)
    tmp = f'{dst}.{os.getpid()}.partial'
    request = urllib.request.Request(url, headers={'User-Agent': 'mmstructkd'})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, \
                open(tmp, 'wb') as f:
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def download_checkpoint(url: str, role: str = 'checkpoint', timeout: float = 60.0) -> str:
    """Download ``url`` to the torch hub cache (``$TORCH_HOME/hub/checkpoints``) unless it is
    there, and return the local file. In a distributed run rank 0 downloads first."""
    if _MODEL_ZOO.match(url):
        url = _zoo_url(url)
        if not _URL.match(url):
            return url
    dst = _cache_path(url)
    from mmengine.dist import barrier, get_dist_info
    rank, world_size = get_dist_info()

    def fetch():
        if not osp.isfile(dst):
            try:
                _fetch(url, dst, timeout)
            except Exception as e:
                raise CheckpointError(f'cannot download {role} "{url}": '
                                      f'{type(e).__name__}: {e}') from None

    if rank == 0:
        fetch()
    if world_size > 1:
        barrier()
        if rank != 0:
            fetch()  # another node's cache
    return dst


# ---------------------------------------------------------------------- loading
_UNSAFE_MESSAGES = ('Unsupported global', 'unrecognized function', 'Can only build',
                    'Can only create new object', 'Can only append', 'Can only SETITEM',
                    'Can only SETITEMS', 'persistent_load', 'is blocked')


def _torch_detail(message: str) -> str:
    """The unpickler's own reason inside torch's long weights_only message, without torch's
    advice (which suggests weights_only=False or allow-listing the global)."""
    match = re.search(r'WeightsUnpickler error: (.*?)(\n|$)', message)
    if match:
        message = match.group(1)
    paragraphs = [p.strip() for p in re.split(r'\n\s*\n', message) if p.strip()]
    kept = [p for p in paragraphs if not p.startswith(('Weights only load failed',
                                                        'Check the documentation'))]
    detail = ' '.join(kept) if kept else (paragraphs[0] if paragraphs else '')
    detail = re.sub(r'^WeightsUnpickler error: ', '', detail.replace('\n', ' '))
    return re.split(r' Please use `torch\.serialization| Please file an issue', detail)[0]


def _open_source(source: Union[str, bytes, IO[bytes]], name: Optional[str], role: str
                 ) -> Tuple[Union[str, IO[bytes]], str]:
    if isinstance(source, (bytes, bytearray)):
        return io.BytesIO(source), name or f'<{role} bytes>'
    if not isinstance(source, str):
        return source, name or getattr(source, 'name', f'<{role} stream>')
    if is_url(source):
        local = download_checkpoint(source, role)
        return local, f'{source} (cached as {local})'
    path = osp.expanduser(source)
    if not osp.isfile(path):
        # Lazy: safe_load is the bottom layer (checkpoint, pretrained and the engine load
        # through it), while the hint on how to make the ImageNet files belongs to
        # utils.pretrained, which fetches them through safe_load and atomic_save. A
        # module-level import would close the circle safe_load -> pretrained -> safe_load.
        from .pretrained import missing_weights_hint
        raise FileNotFoundError(f'{role} "{source}" does not exist.' +
                                missing_weights_hint(path))
    if osp.getsize(path) == 0:
        raise CorruptCheckpointError(
            f'{role} "{source}" is empty (0 bytes): an interrupted write or a full disk leaves '
            'such files. Delete it or pass another checkpoint.')
    return path, source


def safe_load(source: Union[str, bytes, IO[bytes]], map_location: Any = 'cpu',
              role: str = 'checkpoint', name: Optional[str] = None) -> Any:
    """Load a ``torch.save`` file with ``weights_only=True`` and mmstructkd's scoped stand-ins.

    Args:
        source (str | bytes | file): A local path, an ``http(s)://`` URL (downloaded to the
            torch hub cache, then loaded the same way), ``torchvision://`` /
            ``open-mmlab://`` / ``mmcls://``, or the bytes / an open binary file.
        map_location: As for ``torch.load``. Defaults to ``'cpu'``.
        role (str): What is loaded, for messages (``'teacher checkpoint'``).
        name (str, optional): How to name a bytes / file source in messages.

    Returns:
        The loaded object, with HistoryBuffer objects and numpy values rebuilt.

    Raises:
        FileNotFoundError: No such file.
        UnsafeCheckpointError: It asks for something that is not plain data (possibly code).
        CorruptCheckpointError: It is empty, truncated, corrupt or no ``torch.save`` file.
        CheckpointError: A URL could not be downloaded.
    """
    handle, label = _open_source(source, name, role)
    try:
        with scoped_allow_list():
            loaded = torch.load(handle, map_location=map_location, weights_only=True)
            return _resolve(loaded, {})
    except _Refused as e:
        raise UnsafeCheckpointError(
            f'{role} "{label}" was refused: it asks for {e}. mmstructkd loads checkpoints '
            'with weights_only=True and builds only tensors, plain Python values, numeric '
            'numpy values and mmengine\'s message-hub buffers. If the file comes from a source '
            'you trust, re-save its weights as plain tensors (torch.save(dict(state_dict='
            'model.state_dict()), path)).') from None
    except pickle.UnpicklingError as e:
        detail = _torch_detail(str(e))
        if any(m in detail for m in _UNSAFE_MESSAGES):
            raise UnsafeCheckpointError(
                f'{role} "{label}" was refused: {detail}. mmstructkd loads checkpoints with '
                'weights_only=True and builds only tensors, plain Python values, numeric numpy '
                'values and mmengine\'s message-hub buffers; this file holds other objects '
                '(possibly code). If it comes from a source you trust, re-save its weights as '
                'plain tensors (torch.save(dict(state_dict=model.state_dict()), path)).'
            ) from None
        raise _corrupt(role, label, detail or type(e).__name__) from None
    except (FileNotFoundError, CheckpointError):
        raise
    except Exception as e:  # noqa: B902  (struct.error, EOFError, the zip reader's errors...)
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ''
        raise _corrupt(role, label, f'{type(e).__name__}: {reason}'.rstrip(': ')) from None


def _corrupt(role: str, label: str, reason: str) -> CorruptCheckpointError:
    return CorruptCheckpointError(
        f'{role} "{label}" is not a readable checkpoint ({reason}): it is truncated, corrupt '
        'or not written by torch.save (an interrupted write or a full disk leaves such '
        'files). Delete it or pass another checkpoint.')


# ---------------------------------------------------------------------- mmengine's loader
def _safe_scheme_loader(prefix: Any) -> Callable[[str, Any], Any]:
    """What replaces one of mmengine's ``CheckpointLoader`` schemes in
    :func:`scoped_checkpoint_loader`."""

    def load(filename: str, map_location: Any = None) -> Any:
        if filename.startswith('mmcls://'):
            from mmengine.runner.checkpoint import _process_mmcls_checkpoint
            return _process_mmcls_checkpoint(safe_load(filename, map_location))
        if prefix == '' or is_url(filename):
            return safe_load(filename, map_location)
        # Other storage back-ends (s3://, petrel://, ...): fetch the bytes through mmengine's
        # file back-end, load them the same safe way.
        from mmengine.fileio import get
        try:
            data = get(filename)
        except Exception as e:
            raise CheckpointError(f'cannot read checkpoint "{filename}" ({type(e).__name__}: '
                                  f'{e}); mmstructkd loads only local files, http(s):// and '
                                  'the model-zoo schemes safely.') from None
        return safe_load(data, map_location, name=filename)

    load.__name__ = 'load_from_mmstructkd_safe_loader'
    return load


@contextlib.contextmanager
def scoped_checkpoint_loader() -> Iterator[None]:
    """Route every scheme of mmengine's ``CheckpointLoader`` (local files, ``http(s)://``,
    ``torchvision://``, ``open-mmlab://``, ...) through :func:`safe_load` for the duration of
    the block, e.g. an ``init_cfg=dict(type='Pretrained', checkpoint=URL)`` that mmengine
    would otherwise load with ``torch.hub.load_state_dict_from_url(weights_only=False)``.
    mmengine's table is put back unchanged when the last open block closes: blocks nest and
    may close in any order (runners in several threads), and none closes another's scope."""
    from mmengine.runner.checkpoint import CheckpointLoader
    with _SCHEMES_LOCK:
        if not _SCHEMES_SCOPE['depth']:
            _SCHEMES_SCOPE['saved'] = CheckpointLoader._schemes
            CheckpointLoader._schemes = OrderedDict(
                (prefix, _safe_scheme_loader(prefix)) for prefix in CheckpointLoader._schemes)
        _SCHEMES_SCOPE['depth'] += 1
    try:
        yield
    finally:
        with _SCHEMES_LOCK:
            _SCHEMES_SCOPE['depth'] -= 1
            if not _SCHEMES_SCOPE['depth']:
                CheckpointLoader._schemes = _SCHEMES_SCOPE.pop('saved')

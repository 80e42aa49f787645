"""Offline teacher: store what the losses need from the teacher once per sample view, read it
back in later epochs instead of running the teacher again.

A cache entry holds, for one training sample seen through one replayable augmentation view
(:class:`mmstructkd.datasets.ReplayableViews` gives each sample its key), every teacher
recorder's buffer sliced to that sample, optionally compressed (fp16/bf16, top-k logits, a lower
resolution for dense maps). Freshly computed teacher outputs go through the same
compression before the losses see them, so a step's result does not depend on whether its
samples were cached.

Safety:

* ``manifest.json`` fingerprints the teacher (a hash of its weights), its config, the recorders,
  the runtime precision, the compression and the dataset; a cache built for anything else is
  refused with an error naming what differs.
* Every entry file carries a SHA-256 of its payload and is written atomically (temporary file,
  then ``os.replace``): a corrupt or truncated entry is detected, deleted and recomputed, never
  used. An interrupted run leaves only whole entries behind.
* The first batch that hits the cache also runs the teacher on its cached samples and compares:
  a pipeline whose randomness was not replayed (a transform drawing from an RNG the wrapper does
  not seed) is an error, not a silently wrong teacher.
"""
import hashlib
import io
import json
import math
import os
import os.path as osp
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor, nn

from mmstructkd.datasets.replayable_views import KEY_FIELD
from mmstructkd.utils.safe_load import safe_load

#: Cache format; bumped when entries or the manifest change meaning.
FORMAT_VERSION = 1
MAGIC = b'MSKDTC1\n'
DTYPES = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}
#: Relative tolerance (of the largest magnitude) when a cached entry is checked against a fresh
#: teacher run: one rounding step of the storage type, doubled (batch composition may change
#: the last bits of a convolution).
VERIFY_RTOL = {'fp32': 1e-4, 'fp16': 2e-3, 'bf16': 2e-2}

#: One recorder's buffer: the items recorded in one forward (a Tensor or a tuple/list of them).
Buffers = Dict[str, List[Any]]


def weights_digest(model: nn.Module) -> str:
    """SHA-256 over the names, shapes, dtypes and bytes of ``model``'s parameters and buffers."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f'{name}:{tuple(tensor.shape)}:{tensor.dtype};'.encode())
        # bf16 has no numpy view; its bytes are those of the int16 reinterpretation.
        data = tensor.view(torch.int16) if tensor.dtype == torch.bfloat16 else tensor
        digest.update(data.numpy().tobytes())
    return digest.hexdigest()


class TensorCodec:
    """Compresses one per-sample teacher tensor for storage and restores it.

    Args:
        dtype (str): Storage type: ``'fp32'`` (exact), ``'fp16'`` or ``'bf16'``.
        topk (int, optional): Keep the ``topk`` largest values along dim 0 (the class dim of
            (C,) logits or (C, H, W) score maps) and replace the other ``C - topk`` by one value
            per position, chosen so that their total ``exp`` mass is kept
            (``logsumexp(rest) - log(C - topk)``): the softmax of the restored logits gives the
            top-k classes exactly their probability at temperature 1.
        scale (float, optional): Store (C, H, W) maps resized by ``scale`` (area averaging) and
            restore them bilinearly to their size.
    """

    def __init__(self, dtype: str = 'fp16', topk: Optional[int] = None,
                 scale: Optional[float] = None) -> None:
        if dtype not in DTYPES:
            raise ValueError(f'teacher_cache dtype must be one of {sorted(DTYPES)}, got {dtype!r}')
        if topk is not None and (not isinstance(topk, int) or topk < 1):
            raise ValueError(f'teacher_cache topk must be a positive int, got {topk!r}')
        if scale is not None and not 0 < scale <= 1:
            raise ValueError(f'teacher_cache scale must be in (0, 1], got {scale!r}')
        self.dtype = dtype
        self.topk = topk
        self.scale = scale

    def describe(self) -> dict:
        return dict(dtype=self.dtype, topk=self.topk, scale=self.scale)

    def encode(self, t: Tensor) -> dict:
        """``t``: one sample's tensor, e.g. shape (C,) or (C, H, W) -> storable dict (CPU)."""
        t = t.detach().float()
        enc: Dict[str, Any] = {'shape': list(t.shape), 'dtype': str(t.dtype)}
        if self.scale is not None and self.scale < 1 and t.dim() == 3:
            size = [max(1, round(s * self.scale)) for s in t.shape[1:]]
            t = F.interpolate(t[None], size=size, mode='area')[0]
        store = DTYPES[self.dtype]
        if self.topk is not None and t.dim() >= 1 and t.shape[0] > self.topk:
            values, index = t.topk(self.topk, dim=0)
            rest = t.scatter(0, index, float('-inf'))
            enc['tail'] = (rest.logsumexp(0) - math.log(t.shape[0] - self.topk)).to(store).cpu()
            enc['values'] = values.to(store).cpu()
            enc['index'] = index.to(torch.int32).cpu()
        else:
            enc['values'] = t.to(store).cpu()
        return enc

    @staticmethod
    def decode(enc: dict, device: torch.device) -> Tensor:
        """Inverse of :meth:`encode` (up to its compression), as fp32 on ``device``."""
        values = enc['values'].to(device=device, dtype=torch.float32)
        if 'index' in enc:
            tail = enc['tail'].to(device=device, dtype=torch.float32)
            full = tail.unsqueeze(0).expand(enc['shape'][0], *tail.shape)
            values = full.scatter(0, enc['index'].to(device=device, dtype=torch.int64), values)
        shape = enc['shape']
        if list(values.shape) != shape:  # stored at a lower resolution
            values = F.interpolate(values[None], size=shape[1:], mode='bilinear',
                                   align_corners=False)[0]
        return values


class TeacherCache:
    """Per-sample teacher outputs on disk (see the module docstring).

    Args:
        dir (str): The cache folder (created if needed).
        fingerprint (dict): What the entries depend on apart from the teacher's weights and the
            dataset (teacher config, recorders, runtime precision, ...); JSON-serialisable.
        weights_fn (callable): Returns the teacher's weights digest; called at the first use
            (the teacher checkpoint is loaded after the distiller is built).
        dtype (str): Storage type of every tensor (see :class:`TensorCodec`). Defaults to
            ``'fp16'``.
        topk (dict[str, int], optional): Recorder name -> top-k logit compression.
        scale (dict[str, float], optional): Recorder name -> resolution factor of dense maps.
        max_size_gb (float): Stop adding entries beyond this size (the teacher then runs for
            the samples left out; a warning says so). Defaults to 20.
        verify (bool): Check the first batch with cached samples against a fresh teacher run.
            Defaults to True.
    """

    def __init__(self, dir: str, fingerprint: dict, weights_fn: Callable[[], str],
                 dtype: str = 'fp16', topk: Optional[Dict[str, int]] = None,
                 scale: Optional[Dict[str, float]] = None, max_size_gb: float = 20.0,
                 verify: bool = True) -> None:
        self.dir = dir
        self.dtype = dtype
        names = set(fingerprint.get('recorders', {}))
        for what, per_recorder in (('topk', topk), ('scale', scale)):
            unknown = sorted(set(per_recorder or {}) - names) if names else []
            if unknown:
                raise ValueError(f'teacher_cache.{what} names recorders {unknown} that are not '
                                 f'teacher recorders; teacher recorders: {sorted(names)}')
        self.codecs = {name: TensorCodec(dtype, (topk or {}).get(name), (scale or {}).get(name))
                       for name in names}
        self.default_codec = TensorCodec(dtype)
        self.fingerprint = dict(fingerprint, format=FORMAT_VERSION,
                                codecs={n: c.describe() for n, c in sorted(self.codecs.items())})
        self.weights_fn = weights_fn
        self.max_bytes = int(max_size_gb * 1024**3)
        self.verify = verify
        self._opened = False
        self._dataset: Optional[str] = None
        self._size = 0
        self._full_warned = False
        #: Counters since the start of the run (hits are samples read instead of computed).
        self.stats = dict(hits=0, misses=0, corrupt=0, stored=0)

    # ------------------------------------------------------------------ manifest
    def _manifest_path(self) -> str:
        return osp.join(self.dir, 'manifest.json')

    def _open(self, dataset: str) -> None:
        """Create or check the manifest (first use): refuse a cache built for something else."""
        expected = dict(self.fingerprint, teacher_weights=self.weights_fn(), dataset=dataset)
        os.makedirs(osp.join(self.dir, 'entries'), exist_ok=True)
        path = self._manifest_path()
        if osp.isfile(path):
            try:
                with open(path) as f:
                    found = json.load(f)
            except (OSError, ValueError) as e:
                # Written atomically, so this is outside damage: no entry can be trusted.
                print_log(f'teacher_cache: {path} is unreadable ({e}); rebuilding the cache.',
                          logger='current', level=30)
                self._wipe_entries()
                found = None
            if found is not None:
                diff = sorted(k for k in set(found) | set(expected)
                              if found.get(k) != expected.get(k))
                if diff:
                    details = '; '.join(f'{k}: cache has {found.get(k)!r}, this run has '
                                        f'{expected.get(k)!r}' for k in diff)
                    raise RuntimeError(
                        f'teacher_cache at {self.dir} was built for another setup ({details}). '
                        'Its entries would give the student another teacher. Delete that '
                        'folder or set teacher_cache.dir to a new one.')
        if not osp.isfile(path):
            _atomic_write(path, json.dumps(expected, indent=1, sort_keys=True).encode())
        self._dataset = dataset
        self._size = sum(e.stat().st_size for e in _scan(osp.join(self.dir, 'entries')))
        self._opened = True

    def _wipe_entries(self) -> None:
        for entry in _scan(osp.join(self.dir, 'entries')):
            os.remove(entry.path)

    # ------------------------------------------------------------------ entries
    def _entry_path(self, key: Tuple[str, int, int]) -> str:
        _, idx, view = key
        return osp.join(self.dir, 'entries', f'{idx // 1000:05d}', f'{idx}_{view}.pt')

    def _load(self, key: tuple) -> Optional[dict]:
        path = self._entry_path(key)
        try:
            with open(path, 'rb') as f:
                raw = f.read()
        except FileNotFoundError:
            return None
        payload = raw[len(MAGIC) + 32:]
        if (raw[:len(MAGIC)] != MAGIC
                or hashlib.sha256(payload).digest() != raw[len(MAGIC):len(MAGIC) + 32]):
            self.stats['corrupt'] += 1
            print_log(f'teacher_cache: {path} is corrupt or truncated; recomputing it.',
                      logger='current', level=30)
            os.remove(path)
            return None
        return safe_load(payload, map_location='cpu', role='teacher_cache entry', name=path)

    def _store(self, key: tuple, entry: dict) -> None:
        if self._size >= self.max_bytes:
            if not self._full_warned:
                print_log(f'teacher_cache: {self.dir} reached max_size_gb; samples not cached '
                          'yet will keep running the teacher.', logger='current', level=30)
                self._full_warned = True
            return
        buf = io.BytesIO()
        torch.save(entry, buf)
        payload = buf.getvalue()
        path = self._entry_path(key)
        os.makedirs(osp.dirname(path), exist_ok=True)
        _atomic_write(path, MAGIC + hashlib.sha256(payload).digest() + payload)
        self._size += len(payload) + len(MAGIC) + 32
        self.stats['stored'] += 1

    # ------------------------------------------------------------------ per-sample split
    def _encode(self, buffers: Buffers, i: int, n: int) -> dict:
        entry = {}
        for name, items in buffers.items():
            codec = self.codecs.get(name, self.default_codec)
            entry[name] = [_map_item(item, lambda t: codec.encode(_sample(t, i, n, name)))
                           for item in items]
        return entry

    @staticmethod
    def collate(entries: Sequence[dict], device: torch.device) -> Buffers:
        """Per-sample entries (batch order) -> the teacher's records of the batch: recorder
        name -> items, as a teacher forward on the whole batch would have recorded them (after
        the cache's compression)."""
        buffers: Buffers = {}
        for name in entries[0]:
            per_call = zip(*(e[name] for e in entries))  # one tuple of samples per call
            buffers[name] = [_stack_items(samples, device) for samples in per_call]
        return buffers

    # ------------------------------------------------------------------ the step
    def read(self, inputs: Tensor, data_samples: list) -> List[Optional[dict]]:
        """The cached entry of every sample of the batch, None where there is none yet.

        Args:
            inputs (Tensor): shape (N, C, H, W), the batch the student sees.
            data_samples (list): Their data samples, each with ``metainfo['teacher_cache_key']``.

        Returns:
            list[dict | None]: One per sample, in batch order.
        """
        keys = [_key_of(ds) for ds in (data_samples or [])]
        if not isinstance(inputs, Tensor) or len(keys) != inputs.shape[0]:
            raise RuntimeError('teacher_cache needs a batch tensor and one data sample per '
                               'image; got inputs of type ' + type(inputs).__name__)
        datasets = {k[0] for k in keys}
        if len(datasets) != 1:
            raise RuntimeError(f'teacher_cache: one batch holds samples of several datasets '
                               f'{sorted(datasets)}; cache one training dataset.')
        if not self._opened:
            self._open(datasets.pop())
        elif datasets != {self._dataset}:
            raise RuntimeError(f'teacher_cache at {self.dir} was opened for dataset '
                               f'{self._dataset}, this batch comes from {sorted(datasets)}.')
        entries = [self._load(k) for k in keys]
        hits = sum(e is not None for e in entries)
        self.stats['hits'] += hits
        self.stats['misses'] += len(entries) - hits
        return entries

    def write(self, data_samples: Sequence, fresh: Buffers) -> List[dict]:
        """Store freshly computed teacher records, one entry per sample.

        Args:
            data_samples (Sequence): The samples the teacher ran on, in its batch order.
            fresh (dict): Recorder name -> items, as the teacher recorded them on that batch.

        Returns:
            list[dict]: The entries (compressed as stored), in the same order.
        """
        entries = [self._encode(fresh, j, len(data_samples)) for j in range(len(data_samples))]
        for sample, entry in zip(data_samples, entries):
            self._store(_key_of(sample), entry)
        return entries

    @property
    def verify_pending(self) -> bool:
        """Whether the next batch with cached samples is to be checked (once per run)."""
        return self.verify

    def check(self, fresh: Buffers, cached: Sequence[dict], device: torch.device) -> None:
        """Compare cached entries with a fresh teacher run on the same samples (once).

        Args:
            fresh (dict): The teacher's records of the cached samples, computed now.
            cached (Sequence[dict]): Their cache entries, in the same order.
            device (torch.device): Where to compare.
        """
        self.verify = False
        expected = self.collate([self._encode(fresh, j, len(cached)) for j in range(len(cached))],
                                device)
        found = self.collate(cached, device)
        rtol = VERIFY_RTOL[self.dtype]
        for name in expected:
            for a, b in zip(_flatten(expected[name]), _flatten(found[name])):
                tol = rtol * max(float(a.abs().max()), 1e-6) + 1e-6
                worst = float((a - b).abs().max()) if a.shape == b.shape else math.inf
                if worst > tol:
                    raise RuntimeError(
                        f'teacher_cache: the cached teacher output of recorder "{name}" differs '
                        f'from a fresh teacher run on the same samples (max abs diff {worst:.3g} '
                        f'> {tol:.3g}). The training pipeline does not replay its randomness: a '
                        'transform draws from an RNG ReplayableViews does not seed (it seeds '
                        "python's random, numpy's global RNG and torch's CPU generator), or "
                        'the batch is changed after the dataset (batch augments). Remove that '
                        'randomness or train without teacher_cache.')
        print_log(f'teacher_cache: {len(cached)} cached samples match a fresh teacher run.',
                  logger='current')


# ---------------------------------------------------------------------- helpers
def _key_of(data_sample: Any) -> Tuple[str, int, int]:
    key = data_sample.metainfo.get(KEY_FIELD) if hasattr(data_sample, 'metainfo') else None
    if key is None:
        raise RuntimeError(
            f'teacher_cache: a data sample has no "{KEY_FIELD}". Wrap the training dataset: '
            "train_dataloader.dataset = dict(type='mmstructkd.ReplayableViews', "
            'dataset=<the dataset>, num_views=4): it gives every sample view a key and replays '
            'its augmentation.')
    return tuple(key)


def _sample(t: Tensor, i: int, n: int, name: str) -> Tensor:
    if not isinstance(t, Tensor) or t.dim() == 0 or t.shape[0] != n:
        shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
        raise RuntimeError(f'teacher_cache: recorder "{name}" recorded {shape}, not a tensor '
                           f'with the batch ({n}) first; only per-sample tensors can be cached.')
    return t[i]


def _map_item(item: Any, fn: Callable[[Tensor], Any]) -> Any:
    if isinstance(item, (tuple, list)):
        return {'seq': [_map_item(x, fn) for x in item], 'tuple': isinstance(item, tuple)}
    return {'t': fn(item)}


def _stack_items(samples: Sequence[dict], device: torch.device) -> Any:
    first = samples[0]
    if 'seq' in first:
        parts = [_stack_items([s['seq'][k] for s in samples], device)
                 for k in range(len(first['seq']))]
        return tuple(parts) if first['tuple'] else parts
    return torch.stack([TensorCodec.decode(s['t'], device) for s in samples])


def _flatten(items: Any) -> List[Tensor]:
    if isinstance(items, Tensor):
        return [items]
    return [t for item in items for t in _flatten(item)]


def _scan(root: str):
    """Every entry file under ``root`` (recursive ``os.scandir``). Temporary files are skipped:
    another rank may be writing them (a crashed write leaves one behind, never an entry)."""
    if not osp.isdir(root):
        return
    for entry in os.scandir(root):
        if entry.is_dir():
            yield from _scan(entry.path)
        elif not entry.name.endswith('.tmp'):
            yield entry


def _atomic_write(path: str, data: bytes) -> None:
    tmp = f'{path}.{os.getpid()}.tmp'
    with open(tmp, 'wb') as f:
        f.write(data)
    os.replace(tmp, path)

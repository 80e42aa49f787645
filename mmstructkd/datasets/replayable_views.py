"""A dataset wrapper whose random augmentation can be replayed, for the teacher-output cache."""
import hashlib
import json
import random
from collections import defaultdict
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Union

import numpy as np
import torch
from mmengine.registry import DATASETS as ROOT_DATASETS
from torch.utils.data import Dataset, get_worker_info

from mmstructkd.registry import DATASETS

#: Metainfo key of each data sample naming its cache entry (read by the distiller's cache).
KEY_FIELD = 'teacher_cache_key'


@contextmanager
def seeded_rngs(seed: int) -> Iterator[None]:
    """Seed python's ``random``, numpy's global RNG and torch's CPU generator, restoring all
    three afterwards (the rest of the run keeps its own random stream)."""
    py_state, np_state = random.getstate(), np.random.get_state()
    torch_state = torch.default_generator.get_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.default_generator.manual_seed(seed)  # not torch.manual_seed: leave CUDA RNGs alone
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.default_generator.set_state(torch_state)


def _fingerprint(dataset: Union[dict, Any], length: int) -> str:
    """A short hash of what defines the samples: the dataset's config (or its class, root,
    annotation file and pipeline when given built) and its length."""
    if isinstance(dataset, dict):
        desc: Any = dataset
    else:
        desc = dict(type=type(dataset).__name__,
                    **{k: getattr(dataset, k, None)
                       for k in ('data_root', 'ann_file', 'data_prefix', 'pipeline')})
    text = json.dumps(dict(dataset=desc, length=length), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@DATASETS.register_module()
class ReplayableViews(Dataset):
    """Gives each training sample ``num_views`` augmentation views that replay exactly.

    Every time a sample is loaded, one of its views is drawn at random; the pipeline then runs
    with python's, numpy's and torch's CPU RNGs seeded from ``(seed, index, view)``, so a view
    always produces the same tensor. The view's key ``(dataset fingerprint, index, view)`` goes
    into the data sample's metainfo (``teacher_cache_key``), which is how
    ``SingleTeacherDistiller(teacher_cache=...)`` finds the teacher's stored outputs for it.

    ``num_views`` trades augmentation variety against teacher work: with ``E`` epochs the
    teacher runs on about ``num_views * (1 - (1 - 1 / num_views) ** E)`` views per sample
    instead of ``E`` (``num_views=1``: once per sample, but every epoch shows the same view).

    Args:
        dataset (dict | Dataset): The training dataset (config or built).
        num_views (int): Views per sample. Defaults to 4.
        seed (int): Base seed of the views (another seed: other views, so another cache).
    """

    def __init__(self, dataset: Union[dict, Dataset], num_views: int = 4, seed: int = 0) -> None:
        if not isinstance(num_views, int) or num_views < 1:
            raise ValueError(f'ReplayableViews: num_views must be a positive int, got '
                             f'{num_views!r}')
        cfg = dict(dataset) if isinstance(dataset, dict) else None
        # The root registry with the config's default scope (mmpretrain, mmseg, ...) finds the
        # toolbox's datasets, as mmengine's own ConcatDataset builds them.
        self.dataset = ROOT_DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.num_views = num_views
        self.seed = seed
        self._cfg = cfg
        self._fingerprint = None
        #: Loads of each index in this process: with persistent workers their seed does not
        #: change between epochs, so the view draw also counts the visits.
        self._visits: Dict[int, int] = defaultdict(int)

    @property
    def metainfo(self) -> dict:
        return getattr(self.dataset, 'metainfo', {})

    def full_init(self) -> None:
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()

    @property
    def fingerprint(self) -> str:
        """Identifies this dataset (config, length, views, seed) in cache keys."""
        if self._fingerprint is None:
            base = _fingerprint(self._cfg if self._cfg is not None else self.dataset, len(self))
            self._fingerprint = f'{base}-v{self.num_views}-s{self.seed}'
        return self._fingerprint

    def __len__(self) -> int:
        return len(self.dataset)

    def _draw_view(self, idx: int) -> int:
        if self.num_views == 1:
            return 0
        worker = get_worker_info()
        # A worker's seed is drawn anew by the DataLoader for every epoch (mmengine's
        # worker_init_fn reseeds numpy/random/torch identically each epoch, so they would
        # repeat the same view); the main process has no worker seed and uses numpy's stream.
        base = worker.seed if worker is not None else int(np.random.randint(2**31))
        self._visits[idx] += 1
        rng = np.random.default_rng([base % 2**63, idx, self._visits[idx]])
        return int(rng.integers(self.num_views))

    def __getitem__(self, idx: int) -> dict:
        view = self._draw_view(idx)
        seed = int(np.random.SeedSequence([self.seed, idx, view]).generate_state(1)[0])
        with seeded_rngs(seed):
            data = self.dataset[idx]
        samples = data.get('data_samples') if isinstance(data, dict) else None
        if samples is None or not hasattr(samples, 'set_metainfo'):
            raise TypeError('ReplayableViews: the dataset must return a dict with '
                            '"data_samples" (a data element, as PackInputs / PackSegInputs / '
                            'PackDetInputs make), got ' + type(data).__name__)
        samples.set_metainfo({KEY_FIELD: (self.fingerprint, int(idx), view)})
        return data

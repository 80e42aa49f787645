"""Block-wise distillation: every candidate learns its teacher unit's function.

A candidate for unit ``u`` gets the teacher's input to ``u`` and regresses the teacher's output
of ``u`` (feature regression: our reading of the paper's block-wise step, which its abstract does
not detail): candidates never see each other's outputs, so each is trained and scored on its
own, and one teacher forward per batch feeds all of them.
"""
import itertools
from dataclasses import dataclass, field
from typing import Dict, Iterable, Iterator, List, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor, nn

from mmstructkd.registry import MODELS, build_own
from mmstructkd.utils.safe_load import scoped_checkpoint_loader


@dataclass
class CandidateResult:
    """A trained candidate: its module config, relative errors and weights."""
    spec: dict
    error: float
    init_error: float
    state_dict: Dict[str, Tensor] = field(repr=False)
    init_state_dict: Dict[str, Tensor] = field(repr=False)


def build_candidate(spec: dict, teacher_unit: nn.Module, inherit: bool) -> nn.Module:
    """Build a candidate; with ``inherit``, copy every teacher weight whose key and shape match
    (all of them for the teacher's own block; the first blocks of a stage with fewer repeats)."""
    module = build_own(MODELS, spec)
    if hasattr(module, 'init_weights'):
        with scoped_checkpoint_loader():  # a Pretrained init_cfg loads safely too
            module.init_weights()
    if inherit:
        own = module.state_dict()
        matched = {k: v for k, v in teacher_unit.state_dict().items()
                   if k in own and own[k].shape == v.shape}
        module.load_state_dict(matched, strict=False)
    return module


class _Capture:
    """Forward hooks that keep the input and output of named teacher units."""

    def __init__(self, model: nn.Module, names: Iterable[str]) -> None:
        self.data: Dict[str, Tuple[Tensor, Tensor]] = {}
        self.handles = [model.get_submodule(name).register_forward_hook(self._hook(name))
                        for name in names]

    def _hook(self, name: str):
        def hook(module, args, output):
            self.data[name] = (args[0].detach(), output.detach())
        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _cycle(loader: Iterable) -> Iterator:
    while True:
        yielded = False
        for batch in loader:
            yielded = True
            yield batch
        if not yielded:
            raise ValueError('the block-wise training dataloader is empty')


class BlockwiseTrainer:
    """Trains the candidates of every searchable unit against a frozen teacher.

    Args:
        teacher (nn.Module): The teacher classifier (``data_preprocessor`` and ``backbone``).
        candidates (dict[str, list[dict]]): Unit name -> candidate configs; candidate 0 is the
            teacher's own block, which keeps the teacher's weights and is not trained.
        iters (int): Training iterations (batches). Defaults to 200.
        eval_iters (int): Batches the final errors are measured on, in eval mode. Defaults
            to 10.
        lr (float): Adam learning rate (cosine-annealed to 0). Defaults to 1e-2.
        weight_decay (float): Adam weight decay. Defaults to 0.
        inherit_weights (bool): Start candidates from the teacher's weights where key and shape
            match. Defaults to True.
        log_interval (int): Log the mean training error every this many iterations.
    """

    def __init__(self, teacher: nn.Module, candidates: Dict[str, List[dict]], iters: int = 200,
                 eval_iters: int = 10, lr: float = 1e-2, weight_decay: float = 0.0,
                 inherit_weights: bool = True, log_interval: int = 50) -> None:
        self.teacher = teacher
        self.specs = candidates
        self.iters = iters
        self.eval_iters = eval_iters
        self.lr = lr
        self.weight_decay = weight_decay
        self.inherit_weights = inherit_weights
        self.log_interval = log_interval
        device = next(teacher.parameters()).device
        self.modules: Dict[str, List[nn.Module]] = {}
        for name, specs in candidates.items():
            unit = teacher.backbone.get_submodule(name)
            mods = [build_candidate(spec, unit, inherit=(i == 0 or inherit_weights)).to(device)
                    for i, spec in enumerate(specs)]
            mods[0].requires_grad_(False)  # the teacher's own block: nothing to learn
            self.modules[name] = mods

    def _teacher_features(self, batch: dict) -> Dict[str, Tuple[Tensor, Tensor]]:
        capture = _Capture(self.teacher.backbone, self.specs)
        try:
            with torch.no_grad():
                inputs = self.teacher.data_preprocessor(batch, False)['inputs']
                self.teacher.backbone(inputs)
        finally:
            capture.remove()
        return capture.data

    def errors(self, batches: Iterable[dict]) -> Dict[str, List[float]]:
        """Relative error of every candidate (eval mode) summed over ``batches``."""
        sums = {n: [[0.0, 0.0] for _ in mods] for n, mods in self.modules.items()}
        for mods in self.modules.values():
            for m in mods:
                m.eval()
        with torch.no_grad():
            for batch in batches:
                feats = self._teacher_features(batch)
                for name, mods in self.modules.items():
                    x, target = feats[name]
                    for i, m in enumerate(mods):
                        sums[name][i][0] += (m(x) - target).pow(2).sum().item()
                        sums[name][i][1] += target.pow(2).sum().item()
        return {n: [a / max(b, 1e-12) for a, b in s] for n, s in sums.items()}

    def run(self, loader: Iterable[dict]) -> Dict[str, List[CandidateResult]]:
        """Train all candidates for ``iters`` batches of ``loader``; score them on the next
        ``eval_iters`` batches (errors before training are measured on those same batches).

        Returns:
            dict[str, list[CandidateResult]]: Unit name -> results, in candidate order.
        """
        self.teacher.eval()
        stream = _cycle(loader)
        eval_batches = list(itertools.islice(stream, self.eval_iters))
        init_states = {n: [{k: v.detach().clone() for k, v in m.state_dict().items()}
                           for m in mods] for n, mods in self.modules.items()}
        init_errors = self.errors(eval_batches)
        params = [p for mods in self.modules.values() for m in mods[1:] for p in m.parameters()]
        if params and self.iters > 0:
            self._train(stream, params)
        errors = self.errors(eval_batches)
        results = {}
        for name, mods in self.modules.items():
            results[name] = [
                CandidateResult(spec=self.specs[name][i], error=errors[name][i],
                                init_error=init_errors[name][i],
                                state_dict={k: v.detach().cpu().clone()
                                            for k, v in m.state_dict().items()},
                                init_state_dict={k: v.cpu()
                                                 for k, v in init_states[name][i].items()})
                for i, m in enumerate(mods)]
        return results

    def _train(self, stream: Iterator, params: List[nn.Parameter]) -> None:
        # One Adam over all candidates is the same as one Adam per candidate: the summed loss
        # gives each candidate the gradient of its own loss, and Adam is per parameter.
        optimizer = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.iters)
        for mods in self.modules.values():
            for m in mods[1:]:
                m.train()
        for it in range(self.iters):
            feats = self._teacher_features(next(stream))
            losses = []
            for name, mods in self.modules.items():
                x, target = feats[name]
                scale = target.pow(2).mean().clamp_min(1e-12)
                losses += [F.mse_loss(m(x), target) / scale for m in mods[1:]]
            if not losses:
                return
            loss = torch.stack(losses).sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            if self.log_interval and ((it + 1) % self.log_interval == 0 or it == 0):
                print_log(f'block-wise training {it + 1}/{self.iters}: mean relative error '
                          f'{loss.item() / len(losses):.4f} over {len(losses)} candidates',
                          logger='current')


def candidates_state(results: Dict[str, List[CandidateResult]],
                     choice: Dict[str, int], trained: bool = True,
                     prefix: str = 'backbone.') -> Dict[str, Tensor]:
    """The weights of the chosen candidates, keyed as in the student model.

    Args:
        results: Output of :meth:`BlockwiseTrainer.run`.
        choice (dict[str, int]): Unit name -> chosen candidate index.
        trained (bool): The block-wise trained weights (True) or the initial ones.
        prefix (str): Prepended to ``<unit>.<key>``.
    """
    state = {}
    for name, index in choice.items():
        result = results[name][index]
        weights = result.state_dict if trained else result.init_state_dict
        state.update({f'{prefix}{name}.{k}': v for k, v in weights.items()})
    return state

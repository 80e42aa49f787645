"""Run a model only as far as the named layers and return their outputs."""
from typing import Callable, Dict, Sequence

from torch import Tensor, nn

from mmstructkd.models.recorders.base_recorder import get_submodule_or_raise
from .forward_until import forward_until

#: The layer name that stands for the model's input itself (pixels of a crop).
INPUT_LAYER = 'input'


def probe_layers(model: nn.Module, inputs: Tensor, layers: Sequence[str],
                 forward: Callable[[nn.Module, Tensor], object],
                 stop_early: bool = True) -> Dict[str, Tensor]:
    """Outputs of ``layers`` of ``model`` for ``inputs`` (their first call).

    Gradients flow as usual: a frozen model (``requires_grad=False``) run outside ``no_grad``
    passes gradients through to ``inputs`` only.

    Args:
        model (nn.Module): e.g. a classifier teacher.
        inputs (Tensor): shape (P, C, H, W).
        layers (Sequence[str]): Dotted module paths (``'backbone.layer1'``) or ``'input'``.
        forward (callable): ``(model, inputs) -> anything``, the forward to run.
        stop_early (bool): Stop the forward once every layer has run (its result is then not
            computed). Defaults to True.

    Returns:
        dict[str, Tensor]: Layer name -> output, plus ``'__output__'`` (the forward's return
        value) when the forward ran to the end.
    """
    modules = {name: get_submodule_or_raise(model, name, what='teacher layer')
               for name in layers if name != INPUT_LAYER}
    feats: Dict[str, Tensor] = {INPUT_LAYER: inputs} if INPUT_LAYER in layers else {}

    def hook_for(name: str):
        def hook(module: nn.Module, args: tuple, output: Tensor) -> None:
            if name not in feats:
                feats[name] = output
        return hook

    if stop_early and not modules:
        return feats
    handles = [m.register_forward_hook(hook_for(n)) for n, m in modules.items()]
    try:
        # Registered after the recording hooks: a layer's own output is kept before the stop.
        stopped, output = forward_until(
            lambda: forward(model, inputs), modules.values() if stop_early else (),
            lambda: all(n in feats for n in modules))
    finally:
        for handle in handles:
            handle.remove()
    if not stopped:
        feats['__output__'] = output
    return feats

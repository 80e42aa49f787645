"""FLOPs and parameters, counted by mmengine's model analysis (FlopAnalyzer, parameter_count).

FlopAnalyzer counts one fused multiply-add as one FLOP, convolutions, linear layers and
normalisation layers included (mmengine's handles), at the input given.
"""
from typing import Dict, Tuple

import torch
from mmengine.analysis import FlopAnalyzer, parameter_count
from torch import Tensor, nn


def _traced(model: nn.Module, inputs: Tuple[Tensor, ...]) -> FlopAnalyzer:
    was_training = model.training
    # Tracing runs a forward: in train mode it would update BatchNorm running statistics.
    model.eval()
    try:
        with torch.no_grad():
            analyzer = FlopAnalyzer(model, inputs)
            analyzer.unsupported_ops_warnings(False)
            analyzer.uncalled_modules_warnings(False)
            analyzer.tracer_warnings('none')
            analyzer.total()  # runs the trace now, in eval mode
    finally:
        model.train(was_training)
    return analyzer


def complexity(module: nn.Module, input_shape: Tuple[int, ...]) -> Dict[str, int]:
    """FLOPs of one forward of a (1, *input_shape) tensor, and the parameters, of ``module``.

    Args:
        module (nn.Module): A block or a whole model (whose ``forward(x)`` takes a tensor).
        input_shape (tuple[int]): (C, H, W) of one input.

    Returns:
        dict: ``flops`` and ``params`` (ints).
    """
    device = next(module.parameters(), torch.empty(0)).device
    analyzer = _traced(module, (torch.randn(1, *input_shape, device=device), ))
    return dict(flops=int(analyzer.total()), params=int(parameter_count(module)['']))


def model_complexity(model: nn.Module, input_shape: Tuple[int, ...]) -> Dict[str, Dict[str, int]]:
    """Per-module FLOPs and parameters of a whole model (one trace).

    Returns:
        dict: module name (``''`` for the model, ``'backbone.layer1'``, ...) -> ``dict(flops,
        params)``.
    """
    device = next(model.parameters()).device
    analyzer = _traced(model, (torch.randn(1, *input_shape, device=device), ))
    flops = analyzer.by_module()
    params = parameter_count(model)
    return {name: dict(flops=int(flops.get(name, 0)), params=int(params.get(name, 0)))
            for name in set(flops) | set(params)}

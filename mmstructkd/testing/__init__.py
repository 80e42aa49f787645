"""Helpers for tests and the demo. Everything here is GENERATED data, never real data."""
from .synthetic_shapes import (SEG_CLASSES, SEG_PALETTE, SHAPES, make_cls_dataset, make_det_dataset,
                               make_scene, make_seg_dataset)

__all__ = [
    'SHAPES', 'SEG_CLASSES', 'SEG_PALETTE', 'make_scene', 'make_seg_dataset',
    'make_det_dataset', 'make_cls_dataset'
]

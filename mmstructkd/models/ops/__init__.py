from .box_crop import crop_and_resize, expand_boxes
from .det_positives import DetPositives, detection_head, detector_positives
from .feature_probe import INPUT_LAYER, probe_layers

__all__ = [
    'crop_and_resize', 'expand_boxes', 'DetPositives', 'detection_head', 'detector_positives',
    'INPUT_LAYER', 'probe_layers'
]

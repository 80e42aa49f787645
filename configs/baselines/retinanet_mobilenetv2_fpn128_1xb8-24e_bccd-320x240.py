# BCCD teacher detector of the ReviewKD benchmark: RetinaNet, ImageNet MobileNetV2, FPN and head
# 128 wide with 4 stacked convs.
_base_ = [
    '../_base_/models/retinanet_mobilenetv2_fpn_bccd.py',
    '../_base_/datasets/bccd_320x240.py',
    '../_base_/schedules/detection_sgd_24e.py',
    'mmdet::_base_/default_runtime.py',
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=4, max_keep_ckpts=2),
                     logger=dict(type='LoggerHook', interval=10))

# BCCD student detector of the detection benchmarks, trained alone: the teacher's family and
# ImageNet backbone with a slim detector on top, FPN and head 64 wide with 1 stacked conv and no
# norm (about a quarter of the teacher's neck+head compute).
_base_ = [
    '../_base_/models/retinanet_mobilenetv2_fpn_bccd.py',
    '../_base_/datasets/bccd_320x240.py',
    '../_base_/schedules/detection_sgd_24e.py',
    'mmdet::_base_/default_runtime.py',
]
model = dict(
    neck=dict(out_channels=64),
    bbox_head=dict(in_channels=64, feat_channels=64, stacked_convs=1))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=4, max_keep_ckpts=2),
                     logger=dict(type='LoggerHook', interval=10))

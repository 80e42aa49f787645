# BCCD student detector of the detection benchmarks, trained alone: the teacher's family at half
# the width, MobileNetV2 x0.5 (about a quarter of the teacher's backbone compute) under an FPN and
# head 64 wide with 1 stacked conv and no norm. From scratch: the ImageNet weights at hand are
# MobileNetV2 x1.0 only. (A first student kept the teacher's ImageNet x1.0 backbone: with only
# the head slimmer it matched the teacher on BCCD val, 51.1 against 50.5 bbox mAP, which leaves
# nothing to distil; this one reaches 40.6, seed 0.)
_base_ = [
    '../_base_/models/retinanet_mobilenetv2_fpn_bccd.py',
    '../_base_/datasets/bccd_320x240.py',
    '../_base_/schedules/detection_sgd_24e.py',
    'mmdet::_base_/default_runtime.py',
]
model = dict(
    backbone=dict(widen_factor=0.5, init_cfg=None),
    neck=dict(in_channels=[16, 48, 160], out_channels=64),
    bbox_head=dict(in_channels=64, feat_channels=64, stacked_convs=1))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=4, max_keep_ckpts=2),
                     logger=dict(type='LoggerHook', interval=10))

# BCCD teacher detector of the detection benchmarks: RetinaNet, ImageNet MobileNetV2, FPN and head
# 128 wide with 4 stacked convs, GroupNorm in the head. Without GN, the four N(0, 0.01)-initialised
# 128-wide convs in a row pass almost no signal at first: trained alone it learned far slower than
# the one-conv student (loss plateaued for 6 epochs; 37.1 bbox mAP after 48 epochs against the
# student's 51.1 after 24), a teacher weaker than its student. GN in the head is the usual cure
# (as in FCOS / ATSS heads).
_base_ = [
    '../_base_/models/retinanet_mobilenetv2_fpn_bccd.py',
    '../_base_/datasets/bccd_320x240.py',
    '../_base_/schedules/detection_sgd_24e.py',
    'mmdet::_base_/default_runtime.py',
]
model = dict(
    neck=dict(out_channels=128),
    bbox_head=dict(in_channels=128, feat_channels=128, stacked_convs=4,
                   norm_cfg=dict(type='GN', num_groups=32, requires_grad=True)))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=4, max_keep_ckpts=2),
                     logger=dict(type='LoggerHook', interval=10))

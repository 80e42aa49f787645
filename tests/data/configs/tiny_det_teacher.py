# The teacher of tiny_det_distill.py: a wider RetinaNet.
_base_ = ['./tiny_det_student.py']
model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[32, 64, 128], out_channels=32),
    bbox_head=dict(in_channels=32, feat_channels=32))

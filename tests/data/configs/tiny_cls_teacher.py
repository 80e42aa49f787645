# The teacher of tiny_cls_distill.py: a wider ResNet.
_base_ = ['./tiny_cls_student.py']
model = dict(backbone=dict(stem_channels=16, base_channels=16), head=dict(in_channels=128))

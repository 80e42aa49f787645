# Student for depth distillation: the teacher's set-up on an ImageNet ResNetV1c-18.
_base_ = ['./depth_r50-v1c_vpd-head_4xb8-25k_nyu-480x480.py']
model = dict(
    backbone=dict(depth=18, init_cfg=dict(checkpoint='open-mmlab://resnet18_v1c')),
    decode_head=dict(in_channels=[64, 128, 256, 512]))

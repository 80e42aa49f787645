# The teacher of tiny_seg_distill.py: the student's config with a wider backbone and head.
_base_ = ['./tiny_seg_student.py']
model = dict(
    backbone=dict(stem_channels=16, base_channels=16),
    decode_head=dict(in_channels=128, channels=32))

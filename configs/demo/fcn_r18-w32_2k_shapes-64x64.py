# Teacher of the demo: the student's config at 4x its width (base_channels=32).
_base_ = ['./fcn_r18-w8_2k_shapes-64x64.py']
model = dict(
    backbone=dict(stem_channels=32, base_channels=32),
    decode_head=dict(in_channels=256, channels=64))

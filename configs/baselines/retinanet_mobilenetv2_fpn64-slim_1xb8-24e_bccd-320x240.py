# BCCD student detector of the ReviewKD benchmark, trained alone: the teacher's family and
# ImageNet backbone with a slim detector on top, FPN and head 64 wide with 1 stacked conv
# (about a quarter of the teacher's neck+head compute).
_base_ = ['./retinanet_mobilenetv2_fpn128_1xb8-24e_bccd-320x240.py']
model = dict(
    neck=dict(out_channels=64),
    bbox_head=dict(in_channels=64, feat_channels=64, stacked_convs=1))

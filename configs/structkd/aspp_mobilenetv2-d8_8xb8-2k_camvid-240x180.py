# Teacher of the CamVid benchmark: ImageNet MobileNetV2, dilated to output stride 8, with an
# ASPP head (DeepLabV3-style, 128 channels, rates 1/6/12/18 for a 23x30 map).
_base_ = ['./fcn_mobilenetv2-d32_8xb8-2k_camvid-240x180.py']
model = dict(
    backbone=dict(strides=(1, 2, 2, 1, 1, 1, 1), dilations=(1, 1, 1, 2, 2, 4, 4)),
    decode_head=dict(
        _delete_=True,
        type='ASPPHead', in_channels=320, in_index=3, channels=128, dilations=(1, 6, 12, 18),
        dropout_ratio=0.1, num_classes=_base_.num_classes, norm_cfg=_base_.norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))

# Student of the CamVid benchmark: ImageNet MobileNetV2 at output stride 32 with a light FCN
# head (64 channels). The ImageNet weights (torchvision's, converted for mmseg) are written by
#   python tools/model_converters/fetch_imagenet_mobilenet_v2.py
# to $MMSTRUCTKD_HOME/pretrain (default ~/.cache/mmstructkd/pretrain), whatever the current
# directory. The schedule follows max_iters: a child config that sets max_iters gets the
# loop and the poly decay of that length (mmstructkd's tools; the scheduler's end defaults to
# the loop's length).
_base_ = [
    'mmseg::_base_/default_runtime.py', '../_base_/datasets/camvid_240x180.py'
]
mobilenet_v2_imagenet = \
    '{{$MMSTRUCTKD_HOME:~/.cache/mmstructkd}}/pretrain/mobilenet_v2_imagenet_mm.pth'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=255,
        size=(180, 240)),
    backbone=dict(
        type='MobileNetV2', widen_factor=1., strides=(1, 2, 2, 2, 1, 2, 1),
        dilations=(1, 1, 1, 1, 1, 1, 1), out_indices=(1, 2, 4, 6), norm_cfg=norm_cfg,
        init_cfg=dict(type='Pretrained', checkpoint=mobilenet_v2_imagenet, prefix='backbone.')),
    decode_head=dict(
        type='FCNHead', in_channels=320, in_index=3, channels=64, num_convs=1,
        concat_input=False, dropout_ratio=0.1, num_classes=_base_.num_classes, norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

max_iters = 2000
optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=4e-5))
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, by_epoch=False)  # end: max_iters
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)

# RetinaNet with an ImageNet MobileNetV2 backbone (strides 8, 16, 32: layers 3, 5, 7) for BCCD's
# 3 classes. Neck and head width are set by the configs that use it. The ImageNet weights are
# torchvision's, converted for mmdet and written to the path below by
#   python tools/model_converters/fetch_imagenet_mobilenet_v2.py
# ($MMSTRUCTKD_HOME defaults to ~/.cache/mmstructkd). mmdet names a block's convs unlike
# mmseg/mmpretrain: a file converted for those loads with only a warning and random weights.
mobilenet_v2_imagenet = \
    '{{$MMSTRUCTKD_HOME:~/.cache/mmstructkd}}/pretrain/mobilenet_v2_imagenet_mmdet.pth'
model = dict(
    type='RetinaNet',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(type='MobileNetV2', out_indices=(2, 4, 6), norm_cfg=dict(type='BN'),
                  init_cfg=dict(type='Pretrained', checkpoint=mobilenet_v2_imagenet,
                                prefix='backbone.')),
    neck=dict(type='FPN', in_channels=[32, 96, 320], out_channels=128, start_level=0,
              add_extra_convs='on_input', num_outs=5),
    bbox_head=dict(
        type='RetinaHead', num_classes=3, in_channels=128, stacked_convs=4, feat_channels=128,
        anchor_generator=dict(type='AnchorGenerator', octave_base_scale=2, scales_per_octave=3,
                              ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128]),
        bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                        target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    train_cfg=dict(
        assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0,
                      ignore_iof_thr=-1),
        sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1, debug=False),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                  nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))

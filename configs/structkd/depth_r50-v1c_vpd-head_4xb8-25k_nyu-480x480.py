# Teacher for depth distillation on NYU-Depth-v2: MMSeg's DepthEstimator with an ImageNet
# ResNetV1c-50 and the VPD depth head (its 4-level input fits ResNet's 1/4..1/32 stages). MMSeg
# ships no ResNet depth checkpoint: train this config first (tools/train.py), then point the
# distillation config's teacher_ckpt at its last checkpoint.
_base_ = [
    'mmseg::_base_/datasets/nyu.py', 'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_25k.py'
]
crop_size = (480, 480)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='DepthEstimator',
    data_preprocessor=dict(
        type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_val=0, seg_pad_val=0,
        size=crop_size),
    backbone=dict(
        type='ResNetV1c', depth=50, num_stages=4, out_indices=(0, 1, 2, 3), norm_cfg=norm_cfg,
        norm_eval=False, style='pytorch', contract_dilation=True,
        init_cfg=dict(type='Pretrained', checkpoint='open-mmlab://resnet50_v1c')),
    # The head's decoder needs feature_dim == 8 * embed_dim.
    decode_head=dict(
        type='VPDDepthHead', in_channels=[256, 512, 1024, 2048], embed_dim=64,
        feature_dim=512, max_depth=10, loss_decode=dict(type='SiLogLoss')),
    test_cfg=dict(mode='whole'))
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.01))
param_scheduler = [dict(type='PolyLR', eta_min=1e-6, power=0.9, begin=0, end=25000,
                        by_epoch=False)]
default_hooks = dict(checkpoint=dict(save_best='rmse', rule='less', max_keep_ckpts=1))

# The classifier teacher of the BCCD cls2det configs: torchvision's ImageNet MobileNetV2 (the
# detectors' backbone) fine-tuned on the cell crops of BCCD train (RBC, WBC, Platelets; mmdet's
# class order), 112x112 inputs. benchmarks/cls2det_bccd.py builds the crops with
#   python tools/dataset_converters/coco_to_crops.py ../shared/data/bccd OUT
# The ImageNet weights (torchvision's, converted for mmpretrain) are written by
#   python tools/model_converters/fetch_imagenet_mobilenet_v2.py
# to $MMSTRUCTKD_HOME/pretrain (default ~/.cache/mmstructkd/pretrain), whatever the current
# directory.
_base_ = [
    'mmpretrain::_base_/models/mobilenet_v2_1x.py',
    'mmpretrain::_base_/default_runtime.py',
]
mobilenet_v2_imagenet = \
    '{{$MMSTRUCTKD_HOME:~/.cache/mmstructkd}}/pretrain/mobilenet_v2_imagenet_mmpretrain.pth'
data_root = 'work_dirs/bccd_crops/'
classes = ('RBC', 'WBC', 'Platelets')
crop_size = 112  # Cls2DetLoss.crop_size of the configs that distil this teacher

data_preprocessor = dict(num_classes=len(classes), mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], to_rgb=True)
model = dict(
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=mobilenet_v2_imagenet,
                                prefix='backbone.')),
    head=dict(num_classes=len(classes), topk=(1, )))

# The distillation's crop stretches a box to crop_size x crop_size: so does the teacher's.
# Blood smears have no up or down: flip both ways.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(crop_size, crop_size), keep_ratio=False),
    dict(type='RandomFlip', prob=[0.25, 0.25], direction=['horizontal', 'vertical']),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(crop_size, crop_size), keep_ratio=False),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=64, num_workers=1, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CustomDataset', data_root=data_root, ann_file='meta/train.txt',
                 data_prefix='train', classes=classes, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64, num_workers=1, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CustomDataset', data_root=data_root, ann_file='meta/val.txt',
                 data_prefix='val', classes=classes, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=4e-5))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=50),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=24),
]
train_cfg = dict(by_epoch=True, max_epochs=24, val_interval=24)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=4, max_keep_ckpts=2),
                     logger=dict(type='LoggerHook', interval=10))

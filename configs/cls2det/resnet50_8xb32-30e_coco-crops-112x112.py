# The classifier teacher of the COCO cls2det configs: an ImageNet ResNet-50 fine-tuned on the
# object crops of COCO train2017 (80 classes, mmdet's class order), 112x112 inputs. Build the
# crops first (the exact boxes, as the released SSD recipe crops them):
#   python tools/dataset_converters/coco_to_crops.py data/coco data/coco_crops \
#       --splits train:annotations/instances_train2017.json:train2017/ \
#                val:annotations/instances_val2017.json:val2017/ --min-size 4
_base_ = [
    'mmpretrain::_base_/models/resnet50.py',
    'mmpretrain::_base_/default_runtime.py',
]
data_root = 'data/coco_crops/'
num_classes = 80
crop_size = 112  # Cls2DetLoss.crop_size of the configs that distil this teacher

data_preprocessor = dict(num_classes=num_classes, mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], to_rgb=True)
model = dict(
    backbone=dict(init_cfg=dict(
        type='Pretrained', prefix='backbone.',
        checkpoint='https://download.openmmlab.com/mmclassification/v0/resnet/'
        'resnet50_8xb32_in1k_20210831-ea4938fc.pth')),
    head=dict(num_classes=num_classes, topk=(1, 5)))

# The distillation's crop stretches a box to crop_size x crop_size: so does the teacher's.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(crop_size, crop_size), keep_ratio=False),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(crop_size, crop_size), keep_ratio=False),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CustomDataset', data_root=data_root, ann_file='meta/train.txt',
                 data_prefix='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=64, num_workers=4, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CustomDataset', data_root=data_root, ann_file='meta/val.txt',
                 data_prefix='val', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=500),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=30),
]
train_cfg = dict(by_epoch=True, max_epochs=30, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=256)

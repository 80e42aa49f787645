# The teacher of the block-wise compression benchmark: mmpretrain's MobileNetV2 (ImageNet
# initialised by benchmarks/blockwise_fashion_mnist.py through model.backbone.init_cfg) on
# Fashion-MNIST resized to 32x32. The grey image stays one channel through the pipeline; the
# three-entry mean/std broadcast it to three identical channels in the data preprocessor,
# which is how a grey image looks to an RGB ImageNet network (normalised with ImageNet's mean
# and std, as its weights expect).
_base_ = [
    '../_base_/datasets/fashion_mnist_bs128.py',
    '../_base_/schedules/sgd_cosine_15e.py',
    'mmpretrain::_base_/default_runtime.py',
]
data_preprocessor = dict(num_classes=10, mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], to_rgb=False)
train_pipeline = [
    dict(type='RandomCrop', crop_size=28, padding=2),
    dict(type='Resize', scale=(32, 32)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='Resize', scale=(32, 32)), dict(type='PackInputs')]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
model = dict(
    type='ImageClassifier',
    backbone=dict(type='MobileNetV2', widen_factor=1.0),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=1280,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
# Fine-tuning from ImageNet: a smaller learning rate than training from scratch.
optim_wrapper = dict(optimizer=dict(lr=0.02))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2),
                     logger=dict(type='LoggerHook', interval=50))

# Teacher for the Fashion-MNIST benchmarks: CIFAR-style ResNet-18 (3x3 stem, no max-pool) at
# half width (32-64-128-256 channels), 1 input channel, 10 classes. ~2.8 M parameters.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet_CIFAR', depth=18, in_channels=1, stem_channels=32,
                  base_channels=32, num_stages=4, out_indices=(3, ), style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=256,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))

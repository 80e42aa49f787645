# Student for the Fashion-MNIST benchmarks: the teacher's architecture at a quarter of its width
# (8-16-32-64 channels): ~1/16 of its FLOPs and parameters (~0.18 M), same four stages, so
# stage-wise methods (ReviewKD) pair stage i with stage i.
model = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNet_CIFAR', depth=18, in_channels=1, stem_channels=8,
                  base_channels=8, num_stages=4, out_indices=(3, ), style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=64,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))

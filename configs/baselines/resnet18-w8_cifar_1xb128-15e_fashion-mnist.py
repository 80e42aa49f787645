# Fashion-MNIST student of the classification benchmarks, trained alone (the baseline every
# distilled student is compared with; the distillation configs inherit this one).
_base_ = [
    '../_base_/models/resnet18-w8_cifar_fashion-mnist.py',
    '../_base_/datasets/fashion_mnist_bs128.py',
    '../_base_/schedules/sgd_cosine_15e.py',
    'mmpretrain::_base_/default_runtime.py',
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2),
                     logger=dict(type='LoggerHook', interval=50))

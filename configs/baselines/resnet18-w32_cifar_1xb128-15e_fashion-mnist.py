# Fashion-MNIST teacher of the classification benchmarks (ReviewKD, STKD).
_base_ = [
    '../_base_/models/resnet18-w32_cifar_fashion-mnist.py',
    '../_base_/datasets/fashion_mnist_bs128.py',
    '../_base_/schedules/sgd_cosine_15e.py',
    'mmpretrain::_base_/default_runtime.py',
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2),
                     logger=dict(type='LoggerHook', interval=50))

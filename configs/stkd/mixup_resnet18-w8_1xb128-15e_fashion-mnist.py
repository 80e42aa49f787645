# Mixup alone (no teacher) on Fashion-MNIST: the student baseline trained on mmpretrain's Mixup
# with STKD's alpha, to separate what the virtual samples give from what the teacher gives.
_base_ = ['../baselines/resnet18-w8_cifar_1xb128-15e_fashion-mnist.py']

model = dict(data_preprocessor=dict(
    _base_.data_preprocessor, batch_augments=dict(augments=[dict(type='Mixup', alpha=1.0)])))

# Fashion-MNIST (10 classes, 28x28 grey), mmpretrain's FashionMNIST dataset. It reads the
# unpacked idx files (train-images-idx3-ubyte, ...) from data_root;
# benchmarks/lib/fashion_mnist.py puts them there from Debian's package dataset-fashion-mnist (no
# download from the web).
dataset_type = 'FashionMNIST'
data_root = 'data/fashion_mnist'
data_preprocessor = dict(
    num_classes=10,
    mean=[72.94],  # the training set's pixel mean / std (0.286, 0.353 of 255)
    std=[90.02],
    to_rgb=False)
train_pipeline = [
    dict(type='RandomCrop', crop_size=28, padding=2),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='train', download=False,
                 pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
# mmpretrain's MNIST datasets choose the files by test_mode, not by split: both are set.
val_dataloader = dict(
    batch_size=256,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(type=dataset_type, data_root=data_root, split='test', test_mode=True,
                 download=False, pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

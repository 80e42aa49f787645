# Logit KD on Fashion-MNIST with an offline teacher: its logits are computed once per sample
# view and read from a disk cache afterwards (teacher_cache). The training set is wrapped in
# ReplayableViews: each image gets 4 augmentation views (random crop + flip) that replay
# exactly, so over 15 epochs the teacher runs about 4 times per image instead of 15. Logits are
# stored in fp16. A cache made for another teacher checkpoint, config or dataset is refused.
_base_ = ['./kd_resnet18-w32_resnet18-w8_1xb128-15e_fashion-mnist.py']
model = dict(teacher_cache=dict(dir='work_dirs/teacher_cache/kd_resnet18-w32_fashion-mnist',
                                dtype='fp16'))
train_dataloader = dict(
    dataset=dict(_delete_=True, type='mmstructkd.ReplayableViews',
                 dataset=_base_.train_dataloader.dataset, num_views=4))

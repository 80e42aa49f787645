# STKD with half of each batch kept clean (an option, not the paper's all-virtual batch): the
# first half of every batch stays clean and is distilled too (KD weight 1, as vanilla KD), the
# other half is mixed as in stkd_resnet18-w32_resnet18-w8_...py. The student then sees clean
# images every step, which a short schedule needs (mixup alone costs points at 15 epochs).
_base_ = ['./stkd_resnet18-w32_resnet18-w8_1xb128-15e_fashion-mnist.py']

model = dict(
    data_preprocessor=dict(
        batch_augments=dict(augments=[dict(type='STKDMixup', alpha=1.0, clean_ratio=0.5)])),
    distill_losses=dict(
        loss_stkd=dict(type='STKDLoss', tau=4.0, virtual_weight=1.0, clean_weight=1.0)))

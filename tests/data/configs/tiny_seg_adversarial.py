# Holistic distillation on the tiny segmentation pair: pixel-wise + pair-wise + adversarial.
_base_ = ['./tiny_seg_distill.py']
model = dict(
    _delete_=True,
    type='mmstructkd.AdversarialDistiller',
    student=_base_.model.student,
    teacher=_base_.model.teacher,
    teacher_ckpt=None,  # the tests set model.teacher_ckpt
    student_recorders=_base_.model.student_recorders,
    teacher_recorders=_base_.model.teacher_recorders,
    distill_losses=dict(
        loss_pixel=dict(type='PixelWiseLoss', loss_weight=1.0),
        loss_pair=dict(type='PairWiseLoss', node_size=2, loss_weight=1.0)),
    loss_forward_mappings=dict(
        loss_pixel=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits')),
        loss_pair=dict(
            s_feature=dict(from_student=True, recorder='feat'),
            t_feature=dict(from_student=False, recorder='feat'))),
    discriminator=dict(type='StructKDDiscriminator', num_classes=4, base_channels=8),
    adversarial_mapping=dict(
        student=dict(from_student=True, recorder='logits'),
        teacher=dict(from_student=False, recorder='logits')),
    adv_loss_weight=0.1,
    gp_weight=10.0)
optim_wrapper = dict(
    _delete_=True,
    constructor='mmstructkd.AdversarialOptimWrapperConstructor',
    generator=dict(type='OptimWrapper',
                   optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4)),
    discriminator=dict(type='OptimWrapper',
                       optimizer=dict(type='Adam', lr=4e-4, betas=(0.9, 0.99))))
model_wrapper_cfg = dict(type='mmstructkd.DistillerDDP', find_unused_parameters=True)

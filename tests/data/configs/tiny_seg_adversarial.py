# Holistic distillation on the tiny segmentation pair: pixel-wise + pair-wise + adversarial,
# the official structured-KD recipe. The pair-wise term reads layer3 (4x4 on 64x64 images, a
# 2x2 node graph): layer4's 2x2 map would pool into one node, whose loss is always 0.
_base_ = ['./tiny_seg_distill.py']
model = dict(
    _delete_=True,
    type='mmstructkd.AdversarialDistiller',
    student=_base_.model.student,
    teacher=_base_.model.teacher,
    teacher_ckpt=None,  # the tests set model.teacher_ckpt
    student_recorders=dict(
        logits=dict(type='ModuleOutputs', source='decode_head.conv_seg'),
        feat=dict(type='ModuleOutputs', source='backbone.layer3')),
    teacher_recorders=dict(
        logits=dict(type='ModuleOutputs', source='decode_head.conv_seg'),
        feat=dict(type='ModuleOutputs', source='backbone.layer3')),
    distill_losses=dict(
        loss_pixel=dict(type='PixelWiseLoss', loss_weight=1.0, divergence='ce',
                        normalize='image_area', ignore_index=None),
        loss_pair=dict(type='PairWiseLoss', node_scale=0.5, pool='max', detach_norm=True,
                       loss_weight=1.0)),
    loss_forward_mappings=dict(
        loss_pixel=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits')),
        loss_pair=dict(
            s_feature=dict(from_student=True, recorder='feat'),
            t_feature=dict(from_student=False, recorder='feat'))),
    discriminator=dict(type='StructKDDiscriminator', num_classes=4, with_image=False,
                       last_layer='conv4x4', base_channels=8),
    adversarial_mapping=dict(
        student=dict(from_student=True, recorder='logits'),
        teacher=dict(from_student=False, recorder='logits')),
    adv_loss_weight=0.1,
    critic_loss_weight=0.1,
    gp_weight=10.0,
    gp_score='sum')
optim_wrapper = dict(
    _delete_=True,
    constructor='mmstructkd.AdversarialOptimWrapperConstructor',
    generator=dict(type='OptimWrapper',
                   optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=1e-4)),
    discriminator=dict(type='OptimWrapper',
                       optimizer=dict(type='SGD', lr=4e-4, momentum=0.9, weight_decay=5e-4)))
model_wrapper_cfg = dict(type='mmstructkd.DistillerDDP', find_unused_parameters=True)

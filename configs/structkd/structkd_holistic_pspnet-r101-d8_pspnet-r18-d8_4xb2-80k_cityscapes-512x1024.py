# Structured KD, holistic term alone, the official recipe: a WGAN-GP critic on the score maps
# (teacher = real, student = fake); the student gets -0.1 * D(student), the critic
# 0.1 * (-D(teacher) + D(student) + 10 * GP) with the penalty on the gradient of the sum of its
# score map; critic: SGD 4e-4, momentum 0.9, weight decay 5e-4, poly decay (power 0.9) to 0,
# one step after each student step. One documented difference: the critic sees class
# probabilities (input_transform='softmax'), not BatchNorm-ed logits ('batchnorm', official).
_base_ = ['./structkd_pixel_pspnet-r101-d8_pspnet-r18-d8_4xb2-80k_cityscapes-512x1024.py']
model = dict(
    type='mmstructkd.AdversarialDistiller',
    distill_losses=dict(_delete_=True),
    loss_forward_mappings=dict(_delete_=True),
    discriminator=dict(type='StructKDDiscriminator', num_classes=19, with_image=False,
                       input_transform='softmax', last_layer='conv4x4', base_channels=64),
    adversarial_mapping=dict(
        student=dict(from_student=True, recorder='logits'),
        teacher=dict(from_student=False, recorder='logits')),
    adv_loss_weight=0.1,
    critic_loss_weight=0.1,
    gp_weight=10.0,
    gp_score='sum',
    d_steps=1)
optim_wrapper = dict(
    _delete_=True,
    constructor='mmstructkd.AdversarialOptimWrapperConstructor',
    generator=_base_.optim_wrapper,
    discriminator=dict(type='OptimWrapper',
                       optimizer=dict(type='SGD', lr=4e-4, momentum=0.9, weight_decay=5e-4)))
param_scheduler = dict(
    _delete_=True,
    generator=_base_.param_scheduler,
    discriminator=[dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0,
                        end=_base_.train_cfg.max_iters, by_epoch=False)])
# Each step leaves one side without gradient (the frozen critic, then the student).
model_wrapper_cfg = dict(type='mmstructkd.DistillerDDP', find_unused_parameters=True)

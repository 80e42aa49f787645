# Structured KD, holistic term alone: a conditional WGAN-GP critic on (score map, image) pairs,
# teacher = real, student = fake; two optimizers (student: the stock SGD schedule; critic: Adam
# 4e-4 as in the paper's code), one critic step per student step.
_base_ = ['./structkd_pixel_pspnet-r101-d8_pspnet-r18-d8_4xb2-80k_cityscapes-512x1024.py']
model = dict(
    type='mmstructkd.AdversarialDistiller',
    distill_losses=dict(_delete_=True),
    loss_forward_mappings=dict(_delete_=True),
    discriminator=dict(type='StructKDDiscriminator', num_classes=19, with_image=True,
                       base_channels=64),
    adversarial_mapping=dict(
        student=dict(from_student=True, recorder='logits'),
        teacher=dict(from_student=False, recorder='logits')),
    adv_loss_weight=0.1,
    gp_weight=10.0,
    d_steps=1)
optim_wrapper = dict(
    _delete_=True,
    constructor='mmstructkd.AdversarialOptimWrapperConstructor',
    generator=_base_.optim_wrapper,
    discriminator=dict(type='OptimWrapper',
                       optimizer=dict(type='Adam', lr=4e-4, betas=(0.9, 0.99))))
# Each step leaves one side without gradient (the frozen critic, then the student).
model_wrapper_cfg = dict(type='mmstructkd.DistillerDDP', find_unused_parameters=True)

# Structured KD on CamVid, all three terms (critic: Adam 4e-4, one step per student step).
_base_ = ['./structkd_pixel-pair_aspp-mnv2-d8_fcn-mnv2-d32_8xb8-2k_camvid-240x180.py']
model = dict(
    type='mmstructkd.AdversarialDistiller',
    discriminator=dict(type='StructKDDiscriminator', num_classes=11, with_image=True,
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
model_wrapper_cfg = dict(type='mmstructkd.DistillerDDP', find_unused_parameters=True)

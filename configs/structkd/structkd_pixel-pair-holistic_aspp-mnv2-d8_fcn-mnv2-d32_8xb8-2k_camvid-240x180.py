# Structured KD on CamVid, all three terms, the official recipe (see the Cityscapes holistic
# config): critic on probabilities of the score maps, loss x 0.1, penalty on the sum of its
# score map, SGD 4e-4 with poly decay, one step per student step. The critic's input channels
# are the teacher's score-map channels (its num_classes is left to the distiller).
_base_ = ['./structkd_pixel-pair_aspp-mnv2-d8_fcn-mnv2-d32_8xb8-2k_camvid-240x180.py']
model = dict(
    type='mmstructkd.AdversarialDistiller',
    discriminator=dict(type='StructKDDiscriminator', with_image=False,
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
                        by_epoch=False)])  # end: the run's last iteration
model_wrapper_cfg = dict(type='mmstructkd.DistillerDDP', find_unused_parameters=True)

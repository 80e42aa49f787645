# Structured KD for monocular depth (the paper's depth experiments use the pair-wise and the
# holistic terms; a per-pixel class distribution does not exist for regression): ResNet-50
# depth teacher -> ResNet-18 student on NYU-Depth-v2. Train the teacher config first.
_base_ = ['./depth_r18-v1c_vpd-head_4xb8-25k_nyu-480x480.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)
teacher_ckpt = 'work_dirs/depth_r50-v1c_vpd-head_4xb8-25k_nyu-480x480/iter_25000.pth'
model = dict(
    _delete_=True,
    type='mmstructkd.AdversarialDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='{{fileDirname}}/depth_r50-v1c_vpd-head_4xb8-25k_nyu-480x480.py',
                 pretrained=False),
    teacher_ckpt=teacher_ckpt,
    # Depth logits before the head's sigmoid, and the aggregated features the decoder sees.
    student_recorders=dict(
        depth=dict(type='ModuleOutputs', source='decode_head.depth_pred_layer'),
        feat=dict(type='ModuleOutputs', source='decode_head.conv_aggregation')),
    teacher_recorders=dict(
        depth=dict(type='ModuleOutputs', source='decode_head.depth_pred_layer'),
        feat=dict(type='ModuleOutputs', source='decode_head.conv_aggregation')),
    distill_losses=dict(
        loss_pair=dict(type='PairWiseLoss', node_scale=0.5, pool='max', detach_norm=True,
                       loss_weight=0.5)),
    loss_forward_mappings=dict(
        loss_pair=dict(
            s_feature=dict(from_student=True, recorder='feat'),
            t_feature=dict(from_student=False, recorder='feat'))),
    # A depth map has no class distribution: the critic sees the raw depth logits and the
    # image (the paper's conditional critic); the rest is the segmentation recipe.
    discriminator=dict(type='StructKDDiscriminator', num_classes=1, with_image=True,
                       input_transform='none', last_layer='conv4x4', base_channels=64),
    adversarial_mapping=dict(
        student=dict(from_student=True, recorder='depth'),
        teacher=dict(from_student=False, recorder='depth')),
    adv_loss_weight=0.1,
    critic_loss_weight=0.1,
    gp_weight=10.0,
    gp_score='sum')
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
model_wrapper_cfg = dict(type='mmstructkd.DistillerDDP', find_unused_parameters=True)

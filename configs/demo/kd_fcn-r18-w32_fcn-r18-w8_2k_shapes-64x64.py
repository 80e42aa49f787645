# Demo distillation: the w32 teacher into the w8 student with pixel-wise logit KD on the score
# maps and an FitNets-style hint on the last backbone stage (through a 1x1 adapter).
_base_ = ['./fcn_r18-w8_2k_shapes-64x64.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)
teacher_ckpt = 'work_dirs/demo/teacher/iter_2000.pth'
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='{{fileDirname}}/fcn_r18-w32_2k_shapes-64x64.py'),
    teacher_ckpt=teacher_ckpt,
    student_recorders=dict(
        logits=dict(type='ModuleOutputs', source='decode_head.conv_seg'),
        feat=dict(type='ModuleOutputs', source='backbone.layer4')),
    teacher_recorders=dict(
        logits=dict(type='ModuleOutputs', source='decode_head.conv_seg'),
        feat=dict(type='ModuleOutputs', source='backbone.layer4')),
    connectors=dict(feat_adapter=dict(type='ConvConnector', in_channels=64, out_channels=256)),
    distill_losses=dict(
        loss_kd=dict(type='KDLoss', tau=1.0, loss_weight=1.0),
        loss_hint=dict(type='FeatureMSELoss', loss_weight=0.5)),
    loss_forward_mappings=dict(
        loss_kd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits')),
        loss_hint=dict(
            s_feature=dict(from_student=True, recorder='feat', connector='feat_adapter'),
            t_feature=dict(from_student=False, recorder='feat'))))
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

# Distil tiny_seg_teacher.py into tiny_seg_student.py: pixel-wise logit KD + feature MSE.
_base_ = ['./tiny_seg_student.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='{{fileDirname}}/tiny_seg_teacher.py'),
    teacher_ckpt=None,  # the tests set model.teacher_ckpt
    student_recorders=dict(
        logits=dict(type='ModuleOutputs', source='decode_head.conv_seg'),
        feat=dict(type='ModuleOutputs', source='backbone.layer4')),
    teacher_recorders=dict(
        logits=dict(type='ModuleOutputs', source='decode_head.conv_seg'),
        feat=dict(type='ModuleOutputs', source='backbone.layer4')),
    connectors=dict(feat_adapter=dict(type='ConvConnector', in_channels=64, out_channels=128)),
    distill_losses=dict(
        loss_kd=dict(type='KDLoss', tau=1.0, loss_weight=1.0),
        loss_feat=dict(type='FeatureMSELoss', loss_weight=0.1)),
    loss_forward_mappings=dict(
        loss_kd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits')),
        loss_feat=dict(
            s_feature=dict(from_student=True, recorder='feat', connector='feat_adapter'),
            t_feature=dict(from_student=False, recorder='feat'))))
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

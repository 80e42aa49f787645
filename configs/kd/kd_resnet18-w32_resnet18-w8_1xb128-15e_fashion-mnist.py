# Vanilla logit KD (Hinton et al.) on Fashion-MNIST: the comparison of the Fashion-MNIST
# benchmarks (configs/stkd/stkd_..., configs/reviewkd/reviewkd_...), with the same pair and
# schedule, KD settings tau 4, weight 1 (as STKD's), on clean images. The teacher's weights:
# --cfg-options model.teacher_ckpt=... (the benchmarks train the teacher and set it).
_base_ = ['../baselines/resnet18-w8_cifar_1xb128-15e_fashion-mnist.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    # The student's preprocessor on the model, as in the STKD config (it holds wherever the
    # model is built, not only through the Runner's top-level data_preprocessor).
    data_preprocessor=_base_.data_preprocessor,
    teacher=dict(cfg_path='{{fileDirname}}/../baselines/'
                          'resnet18-w32_cifar_1xb128-15e_fashion-mnist.py'),
    teacher_ckpt=None,
    student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    distill_losses=dict(loss_kd=dict(type='KDLoss', tau=4.0, loss_weight=1.0)),
    loss_forward_mappings=dict(
        loss_kd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits'))))
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

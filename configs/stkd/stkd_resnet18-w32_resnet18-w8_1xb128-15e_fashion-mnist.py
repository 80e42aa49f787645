# STKD (arXiv 2103.10047) on Fashion-MNIST, the benchmark's pair: the ResNet-18 at 1/2 width
# (teacher, configs/baselines) into the one at 1/8 width. Each training batch is mixed once by the
# student's data preprocessor (STKDMixup); teacher and student both see the virtual batch, the
# student learns the mixed labels (its own CE) and the teacher's softened distribution
# (STKDLoss). Same KD settings (tau 4, weight 1) as kd_resnet18-w32_resnet18-w8_...py and the
# same alpha as mixup_resnet18-w8_...py, so the three compare. Data, schedule and runtime are
# the student's baseline config's. The teacher's weights: --cfg-options model.teacher_ckpt=...
# (benchmarks/stkd_fashion_mnist.py trains the teacher and sets it).
_base_ = ['../baselines/resnet18-w8_cifar_1xb128-15e_fashion-mnist.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    # The student's preprocessor plus the mixing (on the model, so that it holds wherever the
    # model is built, not only through the Runner's top-level data_preprocessor).
    data_preprocessor=dict(_base_.data_preprocessor,
                           batch_augments=dict(augments=[dict(type='STKDMixup', alpha=1.0)])),
    teacher=dict(cfg_path='{{fileDirname}}/../baselines/'
                          'resnet18-w32_cifar_1xb128-15e_fashion-mnist.py'),
    teacher_ckpt=None,
    student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    distill_losses=dict(loss_stkd=dict(type='STKDLoss', tau=4.0, virtual_weight=1.0)),
    loss_forward_mappings=dict(
        loss_stkd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits'),
            virtual=dict(from_stage='mix', output='virtual'))),
    # Which samples STKDMixup mixed, read off the batch's data samples.
    distill_stages=dict(mix=dict(type='STKDMixRecord')))
custom_hooks = [dict(type='mmstructkd.StudentCheckpointHook')]

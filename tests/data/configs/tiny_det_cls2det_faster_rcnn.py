# Classifier-to-detector distillation of tiny_cls_teacher.py into the tiny Faster R-CNN of
# tiny_det_faster_rcnn.py, on the RoI head's positives.
_base_ = ['./tiny_det_faster_rcnn.py']
custom_imports = dict(imports=['mmstructkd'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='mmstructkd.SingleTeacherDistiller',
    student=_base_.model,
    teacher=dict(cfg_path='{{fileDirname}}/tiny_cls_teacher.py'),
    teacher_ckpt=None,
    student_recorders=dict(
        head=dict(type='MethodInputsRecorder', source='roi_head.bbox_head.loss_and_target')),
    distill_stages=dict(
        cls2det=dict(type='Cls2DetStage', crop_size=16, context=0.1,
                     layers=['input', 'backbone.layer1'], max_samples=32)),
    stage_forward_mappings=dict(
        cls2det=dict(head_inputs=dict(from_student=True, recorder='head'))),
    distill_losses=dict(
        loss_cls2det=dict(
            type='Cls2DetLoss', recognition=dict(tau=2.0, loss_weight=1.0),
            localization=dict(pool_sizes=[4, 4], loss_weight=1.0))),
    loss_forward_mappings=dict(
        loss_cls2det=dict(targets=dict(from_stage='cls2det', output='targets'))),
    teacher_runtime=dict(channels_last=True))

# ReviewKD plus logit KD on Fashion-MNIST (benchmarks/reviewkd_fashion_mnist.py, variant
# reviewkd-kd): the ReviewKD config of the same pair (four stages and the embedding, HCL weight
# 1.0 warmed up over the first epoch) with the logit KD term of the benchmark's KD comparison
# (configs/kd/kd_resnet18-w32_resnet18-w8_...: tau 4, weight 1) added. The teacher's weights:
# --cfg-options model.teacher_ckpt=... (the benchmark trains the teacher and sets it).
_base_ = ['./reviewkd_resnet18-w32_resnet18-w8_1xb128-15e_fashion-mnist.py']

model = dict(
    student_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    teacher_recorders=dict(logits=dict(type='ModuleOutputs', source='head.fc')),
    distill_losses=dict(loss_kd=dict(type='KDLoss', tau=4.0, loss_weight=1.0)),
    loss_forward_mappings=dict(
        loss_kd=dict(
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits'))))

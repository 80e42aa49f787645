# Logit KD on Fashion-MNIST with the teacher's forward in bf16 autocast (teacher_runtime): the
# student, its losses and its optimizer stay fp32. The first step logs how far the bf16 teacher's
# logits are from the fp32 ones. benchmarks/teacher_cost.py compares its student with the plain
# teacher's (configs/kd/kd_resnet18-w32_resnet18-w8_1xb128-15e_fashion-mnist.py).
_base_ = ['./kd_resnet18-w32_resnet18-w8_1xb128-15e_fashion-mnist.py']
model = dict(teacher_runtime=dict(precision='bf16'))

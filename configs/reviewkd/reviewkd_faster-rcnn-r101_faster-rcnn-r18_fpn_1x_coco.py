# ReviewKD: Faster R-CNN R101 (teacher) into Faster R-CNN R18 on COCO. The student is mmdet's
# R50 1x recipe with a ResNet-18 (ImageNet) backbone; its FPN is 256 wide like the teacher's.
# HCL weight 1.2 (the paper's code for this pair).
_base_ = ['./reviewkd_faster-rcnn-r101_faster-rcnn-r50_fpn_1x_coco.py']

model = dict(
    student=dict(
        backbone=dict(depth=18, init_cfg=dict(type='Pretrained',
                                              checkpoint='torchvision://resnet18')),
        neck=dict(in_channels=[64, 128, 256, 512])),
    distill_losses=dict(loss_hcl=dict(loss_weight=1.2)))

# Block-wise KD compression of mmpretrain's ImageNet MobileNetV2 (71.86 top-1), e.g.
#   python tools/compress.py configs/blockwise/blockwise_mobilenet-v2_8xb32_in1k.py \
#       --checkpoint https://download.openmmlab.com/mmclassification/v0/mobilenet_v2/\
#   mobilenet_v2_batch256_imagenet_20200708-3b2dc3af.pth --flops-budget 0.5 \
#       --cfg-options train_cfg.max_epochs=30
# The fine-tune keeps the stock schedule (300 epochs) unless overridden as above.
_base_ = ['mmpretrain::mobilenet_v2/mobilenet-v2_8xb32_in1k.py']
compression = dict(
    input_size=(224, 224),
    search_space=dict(
        InvertedResidualStage=dict(type='InvertedResidualSpace', expand_ratios=(6, 4, 3, 2, 1),
                                   min_blocks=1),
        ConvModule=dict(type='PointwiseSpace', rank_ratios=(0.5, 0.25, 0.125))),
    # 224x224 features: smaller batches; more iterations than on Fashion-MNIST.
    block_training=dict(iters=5000, eval_iters=50, lr=5e-3, batch_size=32, log_interval=100),
    selection=dict(resolution=4000),
    finetune=dict(tau=1.0, loss_weight=1.0, logits='head.fc', feature_hints=True,
                  hint_weight=1.0))

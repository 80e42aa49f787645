# Block-wise KD compression of the Fashion-MNIST MobileNetV2 teacher (benchmark:
# benchmarks/blockwise_fashion_mnist.py):
#   python tools/compress.py configs/blockwise/blockwise_mobilenet-v2_fashion-mnist-32x32.py \
#       --checkpoint TEACHER.pth --flops-budget 0.5
# The teacher's config plus a `compression` section (defaults: mmstructkd/compression/
# compressor.py, DEFAULT_SETTINGS).
_base_ = ['./mobilenet-v2_in1k-pre_1xb128-15e_fashion-mnist-32x32.py']
compression = dict(
    input_size=(32, 32),  # FLOPs counted at the pipeline's size
    search_space=dict(
        # layer1..layer7: repeats 1..n x expansion (6, 4, 2, 1 = depthwise-separable)
        InvertedResidualStage=dict(type='InvertedResidualSpace', expand_ratios=(6, 4, 2, 1),
                                   min_blocks=1),
        # conv2 (320 -> 1280, a fifth of the parameters): low-rank 1x1 factorisations
        ConvModule=dict(type='PointwiseSpace', rank_ratios=(0.5, 0.25, 0.125))),
    # Every candidate (69 here) regresses its teacher stage's output from the teacher's input.
    block_training=dict(iters=300, eval_iters=10, lr=1e-2, batch_size=64, log_interval=50),
    selection=dict(resolution=4000),
    # End-to-end fine-tune: logit KD (tau 4, as the Fashion-MNIST KD config) from the teacher.
    finetune=dict(tau=4.0, loss_weight=1.0, logits='head.fc', feature_hints=False))

"""tools/compress.py refuses an impossible budget before the block-wise search."""
import pytest

from mmstructkd.compression import BlockwiseCompressor
from tests.test_compression.conftest import compress_main, write_teacher


def test_an_impossible_budget_is_refused_before_the_search(cls_root, tmp_path, monkeypatch):
    config, ckpt = write_teacher('resnet_cifar', cls_root, str(tmp_path))

    def search(*args, **kwargs):
        pytest.fail('the block-wise search ran for a budget that cannot be met')

    monkeypatch.setattr(BlockwiseCompressor, 'search', search)
    with pytest.raises(ValueError, match=r'flops budget .* \(0\.001\) cannot be met: .*'
                       r'cheapest student of this search space'):
        compress_main()([config, '--checkpoint', ckpt, '--flops-budget', '0.001',
                         '--work-dir', str(tmp_path / 'out')])

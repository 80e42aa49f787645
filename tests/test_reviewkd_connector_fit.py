"""The connector-fit check of the ReviewKD BCCD benchmark (benchmarks/reviewkd_connector_fit.py):
fitting a fresh connector on cached features lowers the held-out HCL, faster at a higher lr."""
import torch

from benchmarks import reviewkd_connector_fit
from mmstructkd.models.connectors import ReviewKDConnector
from mmstructkd.models.losses import HCLLoss


def test_fit_fresh_connector_lowers_held_out_hcl_faster_at_higher_lr():
    torch.manual_seed(0)
    mix = [torch.randn(8, 4) for _ in range(2)]  # the teacher: a fixed map of the student

    def pair():
        student = [torch.randn(2, 4, 8, 8), torch.randn(2, 4, 4, 4)]
        teacher = [torch.einsum('nchw,dc->ndhw', s, m) for s, m in zip(student, mix)]
        return student, teacher

    cache, held_out = [pair() for _ in range(4)], [pair()]
    fresh = ReviewKDConnector(in_channels=[4, 4], out_channels=[8, 8], mid_channels=4)
    fresh.eval()
    with torch.no_grad():
        start = float(HCLLoss()(fresh(held_out[0][0]), held_out[0][1]))
    slow = reviewkd_connector_fit.fit_fresh_connector(fresh, cache, held_out, 0.001, 40, 20)
    fast = reviewkd_connector_fit.fit_fresh_connector(fresh, cache, held_out, 0.01, 40, 20)
    assert [s for s, _ in fast] == [20, 40]
    assert fast[-1][1] < slow[-1][1] < start
    # the fresh connector itself is not trained (each fit starts from a copy)
    with torch.no_grad():
        assert float(HCLLoss()(fresh(held_out[0][0]), held_out[0][1])) == start

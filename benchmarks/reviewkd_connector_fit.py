"""Does ReviewKD's connector fit the teacher within a short schedule? (BCCD, FPN levels.)

ReviewKD maps the student's FPN levels to the teacher's through new ABF modules (random init).
For each finished ReviewKD BCCD run given, this measures on val batches, per level, the mean
squared error of its trained connector against the teacher next to the teacher's own energy
(mean square: the error of a connector that outputs zeros). Then, with the student frozen at
the first run's final weights and its and the teacher's features of 10 training batches cached,
it fits a fresh connector with the runs' SGD (momentum 0.9) at the schedule's lr and at 10x, and
prints the HCL on 2 other (held-out) training batches along the way. Nothing here looks at val
mAP. Writes ``results/reviewkd_connector_fit.json``.

    python -m benchmarks.reviewkd_connector_fit \\
        work_dirs/benchmarks/bccd/reviewkd-connector-lr1_24e_teacher-gn_48e_seed0 \\
        work_dirs/benchmarks/bccd/reviewkd_24e_teacher-gn_48e_seed0
"""
import argparse
import copy
import os
import os.path as osp
from typing import List

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmstructkd  # noqa: F401 (registers the distiller)
from benchmarks.lib.bccd import DATA_ROOT, WORK_ROOT
from benchmarks.lib.common import REPO_ROOT, markdown_table, write_json
from mmstructkd.engine import SafeRunner as Runner
from mmstructkd.models.losses import HCLLoss
from mmstructkd.registry import MODELS
from mmstructkd.utils import load_model_checkpoint as load_checkpoint


def build_distiller(run_dir: str, teacher_ckpt: str):
    """The run's distiller (its own config copy in the work dir) with its final weights, its
    config, and a copy of its connector as initialised (before the weights were loaded)."""
    configs = [f for f in sorted(os.listdir(run_dir)) if f.endswith('.py')]
    if not configs or not osp.isfile(osp.join(run_dir, 'last_checkpoint')):
        raise FileNotFoundError(f'{run_dir}: no config copy or last_checkpoint; pass the work '
                                'dir of a finished ReviewKD BCCD run.')
    cfg = Config.fromfile(osp.join(run_dir, configs[0]))
    cfg.model.teacher_ckpt = teacher_ckpt
    model = MODELS.build(cfg.model)
    fresh = copy.deepcopy(model.connectors['review'])
    with open(osp.join(run_dir, 'last_checkpoint')) as f:
        load_checkpoint(model, f.read().strip(), map_location='cpu', logger='silent')
    return model.eval(), cfg, fresh


def batches(cfg: Config, loader: str, data_root: str, count: int) -> List[dict]:
    cfg[loader].dataset.data_root = osp.join(data_root, '')
    cfg[loader].update(num_workers=0, persistent_workers=False)
    out = []
    for batch in Runner.build_dataloader(cfg[loader]):
        out.append(batch)
        if len(out) == count:
            return out
    return out


@torch.no_grad()
def fpn_features(model, batch: dict, training: bool) -> tuple:
    """Student and teacher FPN levels of one batch (each list of (N, C, H, W))."""
    s = model.student.data_preprocessor(batch, training)['inputs']
    t = model.teacher.data_preprocessor(batch, training)['inputs']
    return (list(model.student.neck(model.student.backbone(s))),
            list(model.teacher.neck(model.teacher.backbone(t))))


def fit_fresh_connector(fresh, cache, held_out, lr: float, steps: int, every: int) -> list:
    """SGD (momentum 0.9, weight decay 1e-4, the runs' optimizer) on the HCL of cached
    features; the held-out HCL every ``every`` steps."""
    hcl = HCLLoss()
    connector = copy.deepcopy(fresh)
    optim = torch.optim.SGD(connector.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    curve = []
    for step in range(1, steps + 1):
        connector.train()
        student, teacher = cache[step % len(cache)]
        loss = hcl(connector(student, teacher), teacher)
        optim.zero_grad()
        loss.backward()
        optim.step()
        if step % every == 0:
            connector.eval()
            with torch.no_grad():
                value = sum(float(hcl(connector(s, t), t)) for s, t in held_out) / len(held_out)
            curve.append((step, round(value, 3)))
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(prog='python -m benchmarks.reviewkd_connector_fit',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('runs', nargs='+', help='work dirs of finished ReviewKD BCCD runs')
    parser.add_argument('--teacher', default=osp.join(WORK_ROOT, 'teacher-gn_48e',
                                                      'epoch_48.pth'))
    parser.add_argument('--data-root', default=DATA_ROOT)
    parser.add_argument('--lr', type=float, default=0.01, help="the schedule's lr")
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--results', default=osp.join(REPO_ROOT, 'benchmarks', 'results',
                                                      'reviewkd_connector_fit.json'))
    args = parser.parse_args()
    torch.manual_seed(0)
    init_default_scope('mmdet')

    trained = {}
    for run in args.runs:
        model, cfg, _ = build_distiller(run, args.teacher)
        val = batches(cfg, 'val_dataloader', args.data_root, 3)
        err = torch.zeros(5)
        energy = torch.zeros(5)
        for batch in val:
            student, teacher = fpn_features(model, batch, training=False)
            with torch.no_grad():
                mapped = model.connectors['review'](student, teacher)
            for level, (m, t) in enumerate(zip(mapped, teacher)):
                err[level] += (m - t).pow(2).mean() / len(val)
                energy[level] += t.pow(2).mean() / len(val)
        trained[osp.basename(run.rstrip('/'))] = [round(float(e), 3) for e in err]
    names = list(trained)
    print('Trained connectors on 3 val batches: MSE to the teacher per FPN level (a connector '
          'that outputs zeros scores the teacher energy)')
    print(markdown_table(['level', 'teacher energy'] + names,
                         [[f'P{level + 3}', round(float(energy[level]), 3)] +
                          [trained[n][level] for n in names] for level in range(5)]))

    # A fresh connector on the first run's frozen student, features of 12 train batches cached.
    model, cfg, fresh = build_distiller(args.runs[0], args.teacher)
    cache = [fpn_features(model, b, training=True)
             for b in batches(cfg, 'train_dataloader', args.data_root, 12)]
    curves = {lr: fit_fresh_connector(fresh, cache[:10], cache[10:], lr, args.steps,
                                      every=args.steps // 6)
              for lr in (args.lr, 10 * args.lr)}
    steps = [s for s, _ in curves[args.lr]]
    print(f'A fresh connector fitted on cached features of {names[0]} (student frozen): '
          'held-out HCL after N steps')
    print(markdown_table(['connector lr'] + [f'{s} steps' for s in steps],
                         [[lr] + [v for _, v in curve] for lr, curve in curves.items()]))
    write_json(args.results, dict(
        teacher_energy=[round(float(e), 3) for e in energy], trained_connector_mse=trained,
        fresh_fit=dict(run=names[0], curves={str(lr): c for lr, c in curves.items()})))
    ratio = curves[args.lr][-1][1] / curves[10 * args.lr][-1][1]
    print(f'hcl_after_{args.steps}_steps_lr_x1_over_x10={ratio:.2f}')


if __name__ == '__main__':
    main()

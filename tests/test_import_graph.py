"""A quiet import (issue #22): no import circle among mmstructkd's modules, and the registries
find their modules through ``locations=``.

The graph is built by ``tools/analysis/import_graph.py`` (see its docstring for how an import
statement becomes edges; ``python tools/analysis/import_graph.py`` prints it).
"""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
from mmengine.registry import Registry

from tests.conftest import REPO_ROOT

_spec = importlib.util.spec_from_file_location(
    'mmstructkd_import_graph', osp.join(REPO_ROOT, 'tools', 'analysis', 'import_graph.py'))
ig = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ig)

#: Function-local imports of mmstructkd modules that a module-level import would turn into a
#: circle, each with the layering reason (the import's comment says it too). Any other lazy
#: import must close no circle: import it at module level instead, where this test sees it.
LAYERING_LAZY_IMPORTS = {
    # safe_load is the bottom layer (checkpoint, pretrained, the engine load through it); the
    # hint on how to make a missing ImageNet file belongs to pretrained, which fetches the files
    # through safe_load and atomic_save.
    ('mmstructkd.utils.safe_load', 'mmstructkd.utils.pretrained'),
}


def test_no_import_circle():
    graph = ig.build_graph()
    assert len(graph) > 50, sorted(graph)  # the package was found
    assert 'mmstructkd.models.recorders' in graph['mmstructkd.models']
    cycles = ig.import_cycles(graph)
    assert not cycles, 'import circles among mmstructkd modules:\n' + ig.describe_cycles(graph)


def test_lazy_imports_close_only_the_documented_circles():
    graph = ig.build_graph(lazy=True)
    for importer, imported in LAYERING_LAZY_IMPORTS:
        assert imported in graph[importer], (
            f'{importer} no longer imports {imported}: drop it from LAYERING_LAZY_IMPORTS')
        graph[importer].discard(imported)
    cycles = ig.import_cycles(graph)
    assert not cycles, ('circles through function-local imports (import at module level, or '
                        'list a true layering problem in LAYERING_LAZY_IMPORTS):\n' +
                        ig.describe_cycles(graph))


def _write(root, files):
    for path, text in files.items():
        os.makedirs(osp.dirname(osp.join(root, path)), exist_ok=True)
        with open(osp.join(root, path), 'w') as f:
            f.write(textwrap.dedent(text))


def test_graph_finds_a_circle_through_an_init(tmp_path):
    """The checker itself: reading a name from a package's namespace inside that package is a
    circle through its ``__init__``; importing a sibling module, a lazy import and a
    TYPE_CHECKING import are not."""
    _write(str(tmp_path), {
        'pkg/__init__.py': 'from .a import A\nfrom . import sub\n',
        'pkg/a.py': 'from pkg import B\nA = 1\n',
        'pkg/sub/__init__.py': 'from .m import M\n',
        'pkg/sub/m.py': '''\
            from typing import TYPE_CHECKING
            from pkg.sub.n import N
            from . import n
            if TYPE_CHECKING:
                from pkg.sub import M
            M = 1

            def later():
                from pkg.sub import M
            ''',
        'pkg/sub/n.py': 'import os\nN = 1\n',
    })
    graph = ig.build_graph(str(tmp_path), 'pkg')
    assert graph == {'pkg': {'pkg.a', 'pkg.sub'}, 'pkg.a': {'pkg'}, 'pkg.sub': {'pkg.sub.m'},
                     'pkg.sub.m': {'pkg.sub.n'}, 'pkg.sub.n': set()}
    assert ig.import_cycles(graph) == [['pkg', 'pkg.a']]
    assert ig.example_cycle(graph, ['pkg', 'pkg.a']) == ['pkg', 'pkg.a', 'pkg']
    lazy = ig.build_graph(str(tmp_path), 'pkg', lazy=True)
    assert lazy['pkg.sub.m'] == {'pkg.sub.n', 'pkg.sub'}
    assert ['pkg.sub', 'pkg.sub.m'] in ig.import_cycles(lazy)


def _own_registries():
    import mmstructkd.registry as registry
    return {name: obj for name, obj in vars(registry).items()
            if isinstance(obj, Registry) and obj.scope == 'mmstructkd'}


def _imported_by(graph, location):
    """The modules that importing ``location`` runs (its packages below the top one, itself,
    and what they import), from the static graph."""
    todo = [p for p in ig._prefixes(location)[1:] if p in graph]
    seen = set()
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph[module])
    return seen


def test_registries_find_every_module_through_locations():
    """Each module registered in one of mmstructkd's registries is imported by that registry's
    ``locations=`` alone (mmengine imports them on the first lookup)."""
    import mmstructkd  # noqa: F401  (registers everything)
    graph = ig.build_graph()
    registries = _own_registries()
    assert {'MODELS', 'TASK_UTILS', 'DATASETS', 'HOOKS', 'OPTIM_WRAPPER_CONSTRUCTORS',
            'MODEL_WRAPPERS', 'RUNNERS'} <= set(registries)
    missing = []
    for name, registry in registries.items():
        reached = set().union(*(_imported_by(graph, loc) for loc in registry._locations))
        for key, obj in registry.module_dict.items():
            module = getattr(obj, '__module__', '')
            if module.startswith('mmstructkd.') and module not in reached:
                missing.append(f'{name}: {key} ({module}) not under {registry._locations}')
    assert not missing, '\n'.join(missing)


def _run(script, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=REPO_ROOT)
    proc = subprocess.run([sys.executable, '-c', textwrap.dedent(script)], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


CONFIG = osp.join(REPO_ROOT, 'tests', 'data', 'configs', 'tiny_seg_distill.py')


def test_registry_alone_builds_a_distiller_through_locations():
    """A fresh interpreter with only ``mmstructkd.registry`` imported (the top-level package's
    ``__init__``, which imports everything, is stood in for by an empty package) builds
    ``mmstructkd.SingleTeacherDistiller`` and finds ``mmstructkd.SafeRunner``: the registries'
    ``locations=`` import the subpackages, and none of these needs the top-level package."""
    result = _run(f'''
        import importlib.util, json, sys
        spec = importlib.util.find_spec('mmstructkd')
        sys.modules['mmstructkd'] = importlib.util.module_from_spec(spec)  # not executed
        import mmstructkd.registry
        before = sorted(m for m in sys.modules if m.startswith('mmstructkd.'))
        from mmengine.config import Config
        from mmengine.registry import HOOKS, MODELS, RUNNERS, init_default_scope
        cfg = Config.fromfile({CONFIG!r}, import_custom_modules=False)
        init_default_scope(cfg.default_scope)
        model = MODELS.build(cfg.model)
        runner = RUNNERS.get('mmstructkd.SafeRunner')
        hook = HOOKS.get('mmstructkd.StudentCheckpointHook')
        print(json.dumps(dict(
            before=before, model=type(model).__module__ + '.' + type(model).__name__,
            runner=runner.__module__ + '.' + runner.__name__,
            hook=hook.__module__ + '.' + hook.__name__,
            models_loaded='mmstructkd.models' in sys.modules,
            top_level_ran=hasattr(sys.modules['mmstructkd'], '__version__'))))
        ''')
    assert result['before'] == ['mmstructkd.registry'], result
    assert result['model'] == (
        'mmstructkd.models.distillers.single_teacher_distiller.SingleTeacherDistiller'), result
    assert result['runner'] == 'mmstructkd.engine.runner.SafeRunner', result
    assert result['hook'] == (
        'mmstructkd.engine.hooks.student_checkpoint_hook.StudentCheckpointHook'), result
    assert result['models_loaded'] and not result['top_level_ran'], result


def test_custom_imports_alone_builds_a_config():
    """A config with only ``custom_imports=dict(imports=['mmstructkd'])`` builds its distiller
    in a fresh interpreter, and the import leaves torch's ``weights_only`` allow-list alone."""
    result = _run(f'''
        import json, sys
        import torch
        import torch._dynamo  # torch adds its own entries to its list on this first import
        from mmengine.config import Config
        from mmengine.registry import HOOKS, MODELS, init_default_scope
        safe = [repr(g) for g in torch.serialization.get_safe_globals()]
        preloaded = sorted(m for m in sys.modules if m.split('.')[0] == 'mmstructkd')
        cfg = Config.fromfile({CONFIG!r})
        assert cfg.custom_imports.imports == ['mmstructkd'], cfg.custom_imports
        init_default_scope(cfg.default_scope)
        model = MODELS.build(cfg.model)
        hooks = [HOOKS.build(h) for h in cfg.custom_hooks]
        print(json.dumps(dict(
            preloaded=preloaded, model=type(model).__name__,
            hooks=[type(h).__name__ for h in hooks],
            safe_globals_unchanged=safe == [repr(g) for g in
                                            torch.serialization.get_safe_globals()])))
        ''')
    assert result == dict(preloaded=[], model='SingleTeacherDistiller',
                          hooks=['StudentCheckpointHook'], safe_globals_unchanged=True), result


def test_import_without_mmpretrain():
    """mmpretrain is optional (requirements/mminstall.txt): without it ``import mmstructkd``
    registers everything but the block-wise compression modules and STKDMixup, and no
    registry lists ``mmstructkd.compression`` in its ``locations=``."""
    result = _run('''
        import json, sys
        sys.modules['mmpretrain'] = None  # import mmpretrain raises ImportError; find_spec: None
        import mmstructkd
        from mmstructkd.registry import MODELS, SEARCH_SPACES
        print(json.dumps(dict(
            compression='mmstructkd.compression' in sys.modules,
            locations=MODELS._locations + SEARCH_SPACES._locations,
            distiller=MODELS.get('SingleTeacherDistiller').__name__)))
        ''')
    assert result == dict(compression=False, locations=['mmstructkd.models'],
                          distiller='SingleTeacherDistiller'), result

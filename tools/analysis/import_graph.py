"""The module-level import graph of the ``mmstructkd`` package, and its import cycles.

Every module of the package is parsed with :mod:`ast` (nothing is imported). An edge ``A -> B``
means that executing module ``A`` at import time makes Python execute (or need the finished
namespace of) module ``B``. Only statements that run when the module is imported count: the
module body and the bodies of ``if``/``try``/``with``/loops/classes in it, not function bodies
(lazy imports) and not ``if TYPE_CHECKING:`` blocks.

Packages are nodes too (their ``__init__``), named by the package (``mmstructkd.models``).
Resolving one statement in module ``A``:

* ``import a.b.c`` imports ``a``, ``a.b`` and ``a.b.c``: an edge to each of them;
* ``from M import n`` imports ``M`` (and its parent packages); when ``M.n`` is a submodule it
  also imports ``M.n``, else it reads ``n`` from ``M``'s finished namespace: an edge to ``M``;
* relative imports (``from . import x``, ``from ..x import y``) are resolved against ``A``'s
  package.

Edges to a package that is an *ancestor* of ``A`` are dropped when they only come from walking
down to a submodule (``from mmstructkd.registry import MODELS`` in ``mmstructkd.models.x``):
Python starts a module's parent packages before the module itself, so those ``__init__`` s are
already in ``sys.modules`` and nothing runs. An edge to an ancestor *is* kept when ``A`` reads a
name from that package's namespace (``from mmstructkd.models import X`` inside
``mmstructkd.models.losses.y``): that needs the ``__init__`` to have got past ``X``, which is
the classic circle through the ``__init__`` s.

Run it to print the strongly connected components (``python tools/analysis/import_graph.py``);
``tests/test_import_graph.py`` asserts that there are none larger than one module.
"""
import ast
import os
import os.path as osp
import sys
from typing import Dict, Iterator, List, Optional, Set

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PACKAGE = 'mmstructkd'


def find_modules(root: str = REPO_ROOT, package: str = PACKAGE) -> Dict[str, str]:
    """``{module name: file path}`` for every ``.py`` file of ``package`` under ``root``."""
    modules = {}
    for dirpath, dirnames, filenames in os.walk(osp.join(root, package)):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(('.', '__pycache__')))
        rel = osp.relpath(dirpath, root).split(os.sep)
        for name in sorted(filenames):
            if not name.endswith('.py'):
                continue
            parts = rel if name == '__init__.py' else rel + [name[:-3]]
            modules['.'.join(parts)] = osp.join(dirpath, name)
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == 'TYPE_CHECKING') or (
        isinstance(test, ast.Attribute) and test.attr == 'TYPE_CHECKING')


def import_statements(body: List[ast.stmt], lazy: bool = False) -> Iterator[ast.stmt]:
    """The import statements that run when a module with this ``body`` is imported; with
    ``lazy``, also those in function bodies (they run when the function is called)."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if lazy:
                yield from import_statements(node.body, lazy)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from import_statements(node.body, lazy)
            yield from import_statements(node.orelse, lazy)
        elif isinstance(node, ast.ClassDef):
            yield from import_statements(node.body, lazy)
        else:
            for field in ('body', 'orelse', 'finalbody'):
                yield from import_statements(getattr(node, field, None) or [], lazy)
            for handler in getattr(node, 'handlers', None) or []:
                yield from import_statements(handler.body, lazy)


def _package_of(module: str, path: str) -> str:
    return module if osp.basename(path) == '__init__.py' else module.rpartition('.')[0]


def _resolve_from(module: str, path: str, node: ast.ImportFrom) -> Optional[str]:
    if not node.level:
        return node.module
    base = _package_of(module, path).split('.')
    if node.level > 1:
        base = base[:-(node.level - 1)]
    return '.'.join(base + ([node.module] if node.module else []))


def _prefixes(name: str) -> List[str]:
    parts = name.split('.')
    return ['.'.join(parts[:i]) for i in range(1, len(parts) + 1)]


def build_graph(root: str = REPO_ROOT, package: str = PACKAGE, lazy: bool = False,
                all_parents: bool = False) -> Dict[str, Set[str]]:
    """``{module: modules it imports at import time}``, restricted to ``package``'s modules
    (with ``lazy``, also the modules its functions import when called). ``all_parents`` keeps
    the edges to the importer's own ancestor packages too (the crude count, in which every
    package whose ``__init__`` imports its submodules is a circle)."""
    modules = find_modules(root, package)
    graph: Dict[str, Set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        with open(path, encoding='utf-8') as f:
            tree = ast.parse(f.read(), filename=path)
        ancestors = set() if all_parents else set(_prefixes(module)[:-1])

        def walk_to(target: str) -> None:
            # importing ``target`` starts each of its packages not already started by ``module``
            for name in _prefixes(target):
                if name in modules and name not in ancestors and name != module:
                    graph[module].add(name)

        for node in import_statements(tree.body, lazy):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    walk_to(alias.name)
                continue
            source = _resolve_from(module, path, node)
            if not source:
                continue
            walk_to(source)
            for alias in node.names:
                sub = f'{source}.{alias.name}'
                if sub in modules:
                    walk_to(sub)
                elif source in modules and source != module:
                    graph[module].add(source)  # reads a name from the package's namespace
    return graph


def strongly_connected_components(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Tarjan's algorithm (iterative); components in no particular order, each sorted."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    on_stack: Set[str] = set()
    stack: List[str] = []
    components: List[List[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def import_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The components that are cycles: more than one module, or a module importing itself."""
    return sorted((c for c in strongly_connected_components(graph)
                   if len(c) > 1 or c[0] in graph[c[0]]), key=len, reverse=True)


def example_cycle(graph: Dict[str, Set[str]], component: List[str]) -> List[str]:
    """One concrete circle inside ``component``: ``[a, b, ..., a]`` (breadth-first, shortest
    from its first module back to itself)."""
    members = set(component)
    start = component[0]
    parents: Dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return list(reversed(path)) + [start]
                if child not in parents:
                    parents[child] = node
                    nxt.append(child)
        frontier = nxt
    return [start]


def describe_cycles(graph: Dict[str, Set[str]]) -> str:
    lines = []
    for component in import_cycles(graph):
        lines.append(f'{len(component)} modules: {", ".join(component)}')
        lines.append('  e.g. ' + ' -> '.join(example_cycle(graph, component)))
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--edges', action='store_true', help='also print every edge')
    parser.add_argument('--lazy', action='store_true',
                        help='also count the imports inside functions (run when called)')
    parser.add_argument('--all-parents', action='store_true',
                        help='also count the edges to the importing module\'s own packages')
    args = parser.parse_args(argv)
    graph = build_graph(lazy=args.lazy, all_parents=args.all_parents)
    if args.edges:
        for module in sorted(graph):
            print(module, '->', ', '.join(sorted(graph[module])) or '-')
    cycles = import_cycles(graph)
    largest = max((len(c) for c in strongly_connected_components(graph)), default=0)
    print(f'{len(graph)} modules, {sum(map(len, graph.values()))} edges; '
          f'{len(cycles)} import cycle(s); largest strongly connected component: {largest}')
    if cycles:
        print(describe_cycles(graph))
    return 1 if cycles else 0


if __name__ == '__main__':
    sys.exit(main())

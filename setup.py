"""Install mmstructkd: `pip install -e .` (the tested stack: tools/setup_env.sh)."""
import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(name: str) -> list:
    """Requirement lines of ``requirements/<name>.txt`` without comments."""
    with open(osp.join(HERE, 'requirements', f'{name}.txt')) as f:
        lines = (line.split('#', 1)[0].strip() for line in f)
        return [line for line in lines if line]


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'mmstructkd', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='mmstructkd',
    version=read_version(),
    description='Knowledge distillation for dense prediction and cross-task transfer, '
    'as an OpenMMLab plugin',
    long_description=open(osp.join(HERE, 'README.md')).read()
    if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    license='Apache License 2.0',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools', 'benchmarks')),
    python_requires='>=3.9',
    install_requires=read_requirements('runtime'),
    extras_require=dict(
        mim=read_requirements('mminstall'),
        tests=read_requirements('tests'),
    ),
    zip_safe=False,
)

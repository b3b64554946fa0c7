"""The package's import graph: no cycle, no product module imports the research scripts in benchmarks/ (both count
imports inside functions too: a function-local import that closes a cycle only hides it), and the core modules import
with torch and numpy alone."""
import ast
import subprocess
import sys

import pytest

from helpers import REPO


def import_graph():
    root = REPO / 'amsnet_basicsr'
    modules = {}
    for path in root.rglob('*.py'):
        name = '.'.join(path.relative_to(REPO).with_suffix('').parts)
        modules[name[:-len('.__init__')] if name.endswith('.__init__') else name] = path
    graph = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == '__init__.py' else name.rsplit('.', 1)[0]
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
            if isinstance(node, ast.ImportFrom):
                parts = package.split('.')
                base = parts[:len(parts) - node.level + 1] if node.level else []
                target = '.'.join(base + ([node.module] if node.module else []))
                targets = [next((candidate for candidate in (f'{target}.{alias.name}', target) if candidate in modules),
                                None) for alias in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            graph[name].update(target for target in targets if target in modules and target != name)
    return graph


def test_no_import_cycle():
    graph, state, cycles = import_graph(), {}, []

    def visit(node, path):
        state[node] = 'open'
        for successor in sorted(graph[node]):
            if state.get(successor) == 'open':
                cycles.append(path[path.index(successor):] + [successor])
            elif successor not in state:
                visit(successor, path + [successor])
        state[node] = 'done'

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert 'amsnet_basicsr.scheme' in graph and graph['amsnet_basicsr.plugin']  # the graph was read
    assert not cycles, cycles


# The research scripts that left the package for benchmarks/, by their old and new module names, and the folder itself
RESEARCH = {'common', 'ablation', 'shift_bench', 'data_shift', 'benchmark', 'inference_speed', 'throughput',
            'data_loading', 'checkpoint_ranking', 'apbsn', 'apbsn_model', 'dbsn_arch', 'benchmarks'}


def research_imports(source):
    """The imports of ``source`` that name a research module: any part of a package-relative or ``amsnet_basicsr.``
    name, the first part of any other (``torch.utils.benchmark`` is not research)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names, first_party = [alias.name for alias in node.names], None
        elif isinstance(node, ast.ImportFrom):
            prefix = f'{node.module}.' if node.module else ''
            names, first_party = [prefix + alias.name for alias in node.names], node.level > 0
        else:
            continue
        for name in names:
            parts = name.split('.')
            checked = parts if first_party or parts[0] == 'amsnet_basicsr' else parts[:1]
            if RESEARCH & set(checked):
                found.append(name)
    return found


def test_no_product_module_imports_research():
    """The package never imports benchmarks/ (or a research module under its old name in the package), not even
    inside a function: it installs and runs without the research folder."""
    flagged = research_imports('import torch.utils.benchmark\nfrom .data import benchmark_datasets\n'
                               'def f():\n    from .data import throughput\n    import benchmarks.ablation\n'
                               '    from amsnet_basicsr import shift_bench\n    import inference_speed')
    assert flagged == ['data.throughput', 'benchmarks.ablation', 'amsnet_basicsr.shift_bench', 'inference_speed']
    paths = sorted((REPO / 'amsnet_basicsr').rglob('*.py'))
    offenders = [f'{path.relative_to(REPO)}: {name}' for path in paths
                 for name in research_imports(path.read_text(encoding='utf-8'))]
    assert len(paths) > 30 and not offenders, offenders


@pytest.mark.slow
def test_the_core_imports_with_torch_and_numpy_alone():
    """``import amsnet_basicsr.scheme`` (and tiling, masks, config, camera_noise) in a fresh interpreter loads no
    BasicSR, spandrel, OpenCV, SciPy or h5py; the registration happens only in ``amsnet_basicsr.plugin``."""
    script = ('import sys, amsnet_basicsr.scheme, amsnet_basicsr.tiling, amsnet_basicsr.masks, amsnet_basicsr.config, '
              'amsnet_basicsr.camera_noise; print(" ".join(sorted(m for m in ("basicsr", "spandrel", "cv2", "scipy", '
              '"h5py") if m in sys.modules)))')
    result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ''

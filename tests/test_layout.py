"""The package's import graph has no cycle, counting imports inside functions too (a function-local import that
closes a cycle only hides it)."""
import ast

from conftest import REPO


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

"""No module of `ui`, `services` or `api` imports itself through others (import-linter's contracts see packages, not
a circle between two modules such as `ui.actions` and `ui.theme`); imports inside functions count too."""

import grimp

PACKAGES = ('ui', 'services', 'api')


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every group of modules that import one another round in a circle (Tarjan's strongly connected components)."""
    order: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        order[module] = lowest[module] = len(order)
        stack.append(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in graph.modules:
                continue
            if imported not in order:
                visit(imported)
                lowest[module] = min(lowest[module], lowest[imported])
            elif imported in stack:
                lowest[module] = min(lowest[module], order[imported])
        if lowest[module] == order[module]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in order:
            visit(module)
    return cycles


def test_ui_services_and_api_have_no_import_cycle() -> None:
    assert import_cycles(grimp.build_graph(*PACKAGES, 'models')) == []


def test_a_cycle_would_be_found() -> None:
    graph = grimp.ImportGraph()
    for module in ('ui', 'ui.a', 'ui.b', 'ui.c'):
        graph.add_module(module)
    graph.add_import(importer='ui.a', imported='ui.b')
    graph.add_import(importer='ui.b', imported='ui.c')
    graph.add_import(importer='ui.c', imported='ui.a')
    assert import_cycles(graph) == [['ui.a', 'ui.b', 'ui.c']]

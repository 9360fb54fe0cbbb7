"""The package's structure: every module imports, and the import graph has no cycle.

The graph is read from the source (every `import`, at module level or inside a function), so
a cycle cannot hide behind a function-level import; and the layers point one way only:
the runtime that plays an exported model needs no training code, and training does not
import evaluation.
"""

import ast
import importlib
import os

import pytest

from conftest import ROOT

PACKAGE = "apvg_tf"


def _modules():
  """{dotted module name: source path} of every module of the package."""
  found = {}
  for folder, _, files in os.walk(os.path.join(ROOT, PACKAGE)):
    for name in files:
      if name.endswith(".py"):
        path = os.path.join(folder, name)
        dotted = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
        found[dotted[:-len(".__init__")] if dotted.endswith(".__init__") else dotted] = path
  return found


MODULES = _modules()


def _imports(module, path):
  """The package modules `module` imports, and whether each import is inside a function.

  Returns:
    list of (imported module, inside_function: bool).
  """
  with open(path) as f:
    tree = ast.parse(f.read(), path)
  package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
  out = []

  def visit(node, inside):
    for child in ast.iter_child_nodes(node):
      nested = inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
      if isinstance(child, ast.Import):
        out.extend((a.name, nested) for a in child.names)
      elif isinstance(child, ast.ImportFrom):
        base = child.module or ""
        if child.level:
          parts = package.split(".")[:len(package.split(".")) - child.level + 1]
          base = ".".join(parts + ([child.module] if child.module else []))
        for alias in child.names:
          # `from a.b import c` imports a.b, and a.b.c when c is a module.
          full = f"{base}.{alias.name}"
          out.append((full if full in MODULES else base, nested))
      visit(child, nested)

  visit(tree, False)
  return [(name, nested) for name, nested in out if name in MODULES]


GRAPH = {m: _imports(m, p) for m, p in MODULES.items()}


def _edges(module):
  return {name for name, _ in GRAPH[module]}


def _cycles():
  """The strongly connected components of more than one module (Tarjan's algorithm)."""
  index, low, stack, on_stack, components = {}, {}, [], set(), []

  def connect(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in _edges(v):
      if w not in index:
        connect(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        components.append(sorted(component))

  for module in sorted(MODULES):
    if module not in index:
      connect(module)
  return components


def _reachable(module):
  seen, todo = set(), [module]
  while todo:
    for w in _edges(todo.pop()):
      if w not in seen:
        seen.add(w)
        todo.append(w)
  return seen


def test_the_import_graph_has_no_cycle():
  cycles = _cycles()
  assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_package_import_is_hidden_in_a_function():
  hidden = sorted(f"{m} imports {name}" for m, imports in GRAPH.items()
                  for name, nested in imports if nested)
  assert not hidden, hidden


@pytest.mark.parametrize("module", ["apvg_tf.generation", "apvg_tf.runtime",
                                    "apvg_tf.export_format", "apvg_tf.streaming",
                                    "apvg_tf.serving_module", "apvg_tf.onnx_export"])
def test_the_runtime_and_export_from_an_export_need_no_training_code(module):
  reached = _reachable(module)
  assert not {m for m in reached if m.startswith(("apvg_tf.training", "apvg_tf.evaluation"))}


@pytest.mark.parametrize("module", ["apvg_tf.generation", "apvg_tf.runtime",
                                    "apvg_tf.streaming"])
def test_playing_an_export_needs_no_dataset_code(module):
  assert not {m for m in _reachable(module) if m.startswith("apvg_tf.data")}


def test_the_runtime_needs_only_the_export_format_of_export():
  reached = _reachable("apvg_tf.runtime") | _reachable("apvg_tf.generation")
  assert not reached & {"apvg_tf.serving_module", "apvg_tf.onnx_export", "apvg_tf.export_run"}


def test_training_does_not_import_evaluation():
  for module in MODULES:
    if module.startswith("apvg_tf.training"):
      reached = {m for m in _reachable(module) if m.startswith("apvg_tf.evaluation")}
      assert not reached, f"{module} reaches {sorted(reached)}"


def test_evaluation_imports_training_only_to_restore_a_run():
  importers = {m for m in MODULES if m.startswith("apvg_tf.evaluation") and
               any(name.startswith("apvg_tf.training") for name, _ in GRAPH[m])}
  assert importers <= {"apvg_tf.evaluation.evaluate_run"}, importers


def test_the_checker_finds_a_cycle(monkeypatch):
  """The checker itself: a made-up edge back from the errors module is a cycle."""
  graph = dict(GRAPH)
  graph["apvg_tf.errors"] = GRAPH["apvg_tf.errors"] + [("apvg_tf.generation", True)]
  monkeypatch.setitem(globals(), "GRAPH", graph)
  assert any("apvg_tf.errors" in c for c in _cycles())


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_imports(module):
  importlib.import_module(module)

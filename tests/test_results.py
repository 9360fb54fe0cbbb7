"""The measured results are data: every experiments/results JSON is complete, and its Markdown
is exactly what experiments/render_results.py writes from it."""

import json
import os

import pytest

from experiments import render_results

RESULT_FILES = render_results.result_files()


def _name(path):
  return os.path.relpath(path, render_results.RESULTS)


def test_there_are_results():
  names = {_name(p) for p in RESULT_FILES}
  for table in ("table1", "table1_seeds", "table1_oracle", "table2", "table3",
                "motion_prior_ablation", "cvg", "benchmarks"):
    assert f"{table}.json" in names


@pytest.mark.parametrize("path", RESULT_FILES, ids=_name)
def test_every_result_has_the_required_keys(path):
  with open(path) as f:
    data = json.load(f)
  assert set(render_results.REQUIRED) <= set(data)
  assert len(data["commit"]) == 40 and int(data["commit"], 16) >= 0
  assert {"cores", "gpu", "memory_gb"} <= set(data["machine"])
  assert data["commands"] and data["rows"] and data["columns"]
  if data["wall_time"] is None:  # Not recorded: a note has to say so.
    assert any("not recorded" in note.lower() or "wall time" in note.lower()
               for note in data["notes"])


@pytest.mark.parametrize("path", RESULT_FILES, ids=_name)
def test_the_markdown_is_rendered_from_the_json(path):
  markdown_path = path[:-len(".json")] + ".md"
  assert os.path.exists(markdown_path), "run python experiments/render_results.py"
  with open(markdown_path) as f:
    committed = f.read()
  rendered = render_results.render(render_results.load(path), os.path.basename(path))
  assert rendered == committed, (
      f"{markdown_path} differs from its JSON: edit the JSON, then run "
      "python experiments/render_results.py")


def _write(tmp_path, data):
  path = tmp_path / "result.json"
  path.write_text(json.dumps(data))
  return str(path)


def _minimal():
  return {"title": "t", "description": "d", "commit": "0" * 40, "date": "2026-01-01",
          "machine": {"cores": 2, "gpu": "none", "memory_gb": 24}, "commands": ["make test"],
          "wall_time": "1 s", "columns": ["variant", "psnr"],
          "rows": [{"variant": "a", "psnr": 28.1234}], "notes": [], "source": "a test",
          "formats": {"psnr": ".2f"}}


def test_a_json_missing_a_required_key_is_a_clear_error(tmp_path):
  data = _minimal()
  del data["commit"]
  message = r"result\.json: missing required key\(s\) commit"
  with pytest.raises(render_results.ResultError, match=message):
    render_results.load(_write(tmp_path, data))


def test_a_row_with_an_unknown_column_is_a_clear_error(tmp_path):
  data = _minimal()
  data["rows"][0]["pnsr"] = 1.0
  with pytest.raises(render_results.ResultError, match=r"row 0 .*'pnsr'"):
    render_results.load(_write(tmp_path, data))


def test_a_json_that_is_not_an_object_is_a_clear_error(tmp_path):
  with pytest.raises(render_results.ResultError, match="JSON object"):
    render_results.load(_write(tmp_path, [1, 2]))


def test_rendering_formats_cells_and_lists_commands(tmp_path):
  data = _minimal()
  data["rows"].append({"variant": "b"})  # A missing value is a blank cell.
  markdown = render_results.render(render_results.load(_write(tmp_path, data)), "result.json")
  assert "| variant | psnr |\n|---|---|\n| a | 28.12 |\n| b |  |\n" in markdown
  assert "```bash\nmake test\n```" in markdown
  assert "- Machine: 2 CPU cores, GPU: none, 24 GB memory" in markdown

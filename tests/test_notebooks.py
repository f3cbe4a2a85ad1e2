"""Notebooks are stored clean and follow the kit's conventions (they are executed by `pytest --nbval-lax`)."""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ is empty"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean_and_parameterised(path):
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", path.name), "notebooks are named NN_topic.ipynb"
    cells = json.loads(path.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    for cell in code:
        assert not cell.get("outputs") and cell.get("execution_count") is None, "strip outputs before committing"
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged `parameters`"
    assert "MMSR_FAST" in "".join(params[0]["source"])
    assert "autoreload" in "".join(code[0]["source"])
    after = code[code.index(params[0]) + 1]  # fast mode says so near the top, right after the knobs
    assert "fast_banner(FAST)" in "".join(after["source"]), "the cell after `parameters` calls fast_banner(FAST)"
    assert any("assert" in "".join(c["source"]) for c in code), "checks are asserts in cells"


def test_fast_banner_prints_one_line_in_fast_mode_only(capsys):
    from mmsr_kit.viz import fast_banner

    fast_banner(False)
    assert capsys.readouterr().out == ""
    fast_banner(True)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "MMSR_FAST=1" in out and "not findings" in out


def test_figures_are_kept_for_exports_unless_the_user_chose_a_renderer(monkeypatch):
    import plotly.io as pio

    from mmsr_kit.viz import keep_figures_in_exports

    monkeypatch.delenv("PLOTLY_RENDERER", raising=False)
    for chosen, kept in [("plotly_mimetype", "plotly_mimetype+notebook"), ("browser", "browser"),
                         ("png", "png")]:  # plotly's pick in a Jupyter kernel; then choices of a user's own
        monkeypatch.setattr(pio.renderers, "default", chosen)
        keep_figures_in_exports()
        assert pio.renderers.default == kept
    monkeypatch.setattr(pio.renderers, "default", "plotly_mimetype")
    monkeypatch.setenv("PLOTLY_RENDERER", "plotly_mimetype")  # asked for by name: left as it is
    keep_figures_in_exports()
    assert pio.renderers.default == "plotly_mimetype"

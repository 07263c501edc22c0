"""Bad input to the recipes ends in one clear line, and the artefacts they write (cards, task files) are right."""

import ast
from pathlib import Path

from birdie_hf.hub import template_text


REPO = Path(__file__).resolve().parents[1]


# -- model-card templates are package data -------------------------------------------------------------------------
def test_card_templates_are_package_data():
    setup = ast.parse((REPO / "setup.py").read_text())
    call = next(node for node in ast.walk(setup)
                if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup")
    keywords = {k.arg: k.value for k in call.keywords}
    assert "data_files" not in keywords  # nothing is installed under sys.prefix any more
    package_data = ast.literal_eval(keywords["package_data"])
    assert "templates/*.md" in package_data["birdie_hf"]
    for name in ("pretrained.md", "finetuned.md"):
        assert (REPO / "birdie_hf" / "templates" / name).is_file()
        assert template_text(name).startswith("---\n{{ card_data }}\n---")

"""The shared web infrastructure stays below the pages: no domain imports in it."""

from __future__ import annotations

from pathlib import Path

from tests.test_architecture import DOMAIN, PACKAGE, _imports

# The command line is the edge: it may start domain apps (the pop-up) and the demo.
EDGE = {"cli.py", "cli_popup.py"}


def test_web_infrastructure_imports_no_domain_package() -> None:
    for path in (PACKAGE / "web").rglob("*.py"):
        if path.name in EDGE:
            continue
        bad = _imports(path) & DOMAIN
        assert not bad, f"web/{path.name} imports {bad}"


def test_page_scripts_never_write_html_from_data() -> None:
    for script in [*(PACKAGE / "web").rglob("*.js"), *(PACKAGE / "flags").rglob("*.js")]:
        lines = script.read_text(encoding="utf-8").splitlines()
        text = "\n".join(line for line in lines if not line.lstrip().startswith("//"))
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{script.name} uses {sink}"


def test_templates_never_mark_data_safe() -> None:
    roots = [PACKAGE / "web" / "templates", PACKAGE / "flags" / "popup" / "templates"]
    for template in (p for root in roots for p in root.rglob("*.html")):
        text = template.read_text(encoding="utf-8")
        assert "|safe" not in text.replace(" ", ""), template.name
        assert "autoescape false" not in text, template.name


def test_scripts_and_styles_are_files_not_inline() -> None:
    for template in Path(PACKAGE / "flags" / "popup" / "templates").rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert "<script>" not in text and " style=" not in text and "<style" not in text

"""The leadership summary as a document: standalone HTML (its print stylesheet inside) and a one-page A4 PDF."""

from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from assist.summary import Summary

HERE = Path(__file__).parent
STYLESHEET = HERE / "static" / "summary.css"


@cache
def _templates() -> Environment:
    return Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))


def html(summary: Summary) -> str:
    """The summary as one HTML file that needs nothing else (its stylesheet is inside)."""
    # The stylesheet is the service's own file, not anyone's input: it goes in as it is.
    css = Markup(STYLESHEET.read_text(encoding="utf-8"))  # nosec B704  # the service's own stylesheet file
    return _templates().get_template("documents/summary.html").render(summary=summary, css=css)


def pdf(document: str) -> bytes:
    """The HTML document laid out on A4 by WeasyPrint (imported here: it loads Pango, which is slow)."""
    import weasyprint

    return weasyprint.HTML(string=document).write_pdf()

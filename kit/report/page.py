"""The report page: one self-contained HTML file. Every figure is saved as a PNG in a folder next to the page and
embedded in it as a base64 data URI, so the page opens from disk with no network, no external CSS and no external
script. Text is escaped with ``html.escape``; tables are pandas' own (escaped) HTML.

The page's self-check: a tiny inline script runs on load and writes ``data-images-ok`` (images decoded) and
``data-broken-images`` (images that failed) on ``<body>``, so a headless browser's DOM dump shows whether every
embedded image rendered (``tests/report/test_report_browser.py``).

Example:
    >>> page = Page("my run", "/tmp/report_figures")  # doctest: +SKIP
    >>> page.add("cv", "Cross-validation", [page.p("fold scores"), page.table(frame)])  # doctest: +SKIP
    >>> Path("/tmp/report.html").write_text(page.render())  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["Page", "png_uri", "pyplot", "SELF_CHECK"]

SELF_CHECK = """window.addEventListener("load", function () {
  var images = document.images, broken = 0;
  for (var i = 0; i < images.length; i++) {
    if (!images[i].complete || images[i].naturalWidth === 0) { broken++; }
  }
  document.body.setAttribute("data-images-ok", String(images.length - broken));
  document.body.setAttribute("data-broken-images", String(broken));
});"""

_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:2px solid #ccc;padding-bottom:.2em;margin-top:2em}h3{margin-top:1.4em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0}th,td{border:1px solid #ddd;padding:.25em .6em;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top}figcaption{font-size:.8em;color:#555}
img{max-width:100%}.note{color:#555;font-size:.9em}.warn{color:#a33}pre{background:#f6f6f6;padding:.6em;
overflow-x:auto;font-size:.8em}"""


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_uri(data: bytes) -> str:
    """A PNG's bytes as a data URI.

    Example:
        >>> png_uri(b"\\x89PNG")
        'data:image/png;base64,iVBORw=='
    """
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "figure"


class Page:
    """Sections of HTML and the figures they embed; ``render`` gives the whole page."""

    def __init__(self, title: str, figures_dir):
        self.title = title
        self.figures_dir = Path(figures_dir)
        self.sections: list[str] = []
        self._names: set[str] = set()

    def _png_path(self, name: str) -> Path:
        stem, k = _slug(name), 1
        while f"{stem}{'' if k == 1 else f'_{k}'}" in self._names:
            k += 1
        stem = f"{stem}{'' if k == 1 else f'_{k}'}"
        self._names.add(stem)
        self.figures_dir.mkdir(parents=True, exist_ok=True)
        return self.figures_dir / f"{stem}.png"

    def _img(self, path: Path, caption: str) -> str:
        alt = html.escape(caption or path.stem, quote=True)
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        return f'<figure><img src="{png_uri(path.read_bytes())}" alt="{alt}">{cap}</figure>'

    def figure(self, fig, name: str, caption: str = "", dpi: int = 90) -> str:
        """Save a matplotlib figure as ``<figures_dir>/<name>.png`` (closed afterwards); its embedded <figure>."""
        path = self._png_path(name)
        try:
            fig.savefig(path, dpi=dpi, bbox_inches="tight")
        finally:
            pyplot().close(fig)
        return self._img(path, caption)

    def image(self, array, name: str, caption: str = "") -> str:
        """Save an (H, W[, C]) uint8 image as a PNG; its embedded <figure>."""
        from PIL import Image

        array = np.asarray(array)
        if array.ndim == 3 and array.shape[2] == 1:
            array = array[:, :, 0]
        path = self._png_path(name)
        Image.fromarray(array.astype(np.uint8)).save(path)
        return self._img(path, caption)

    @staticmethod
    def p(text: str, cls: str = "") -> str:
        attr = f' class="{cls}"' if cls else ""
        return f"<p{attr}>{html.escape(str(text))}</p>"

    @staticmethod
    def pre(text: str) -> str:
        return f"<pre>{html.escape(str(text))}</pre>"

    @staticmethod
    def h3(text: str) -> str:
        return f"<h3>{html.escape(str(text))}</h3>"

    @staticmethod
    def table(frame: pd.DataFrame, float_format: str = "{:.4f}") -> str:
        """A DataFrame as an escaped HTML table (no index)."""

        def fmt(value):
            return float_format.format(value)

        return frame.to_html(index=False, border=0, escape=True, na_rep="", float_format=fmt)

    def add(self, section_id: str, title: str, parts) -> None:
        """Append ``<section id=section_id>`` with an <h2> ``title`` and the HTML ``parts`` (a string or a list)."""
        body = parts if isinstance(parts, str) else "\n".join(parts)
        self.sections.append(
            f'<section id="{html.escape(section_id, quote=True)}">\n<h2>{html.escape(title)}</h2>\n{body}\n</section>'
        )

    def render(self) -> str:
        title = html.escape(self.title)
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{title}</title>\n<style>{_STYLE}</style>\n"
            f"<script>/* self-check: data-images-ok / data-broken-images on <body> */\n{SELF_CHECK}\n</script>\n"
            f"</head>\n<body>\n<h1>{title}</h1>\n" + "\n".join(self.sections) + "\n</body>\n</html>\n"
        )

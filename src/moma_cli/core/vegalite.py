"""Vega-Lite specs for moma's charts, and the self-contained HTML page that holds them.

The data is inlined under fixed field names (`x`, `y`, `series`, ...): a field name from a
plot file never reaches Vega-Lite, where dots and brackets in a field would mean nesting.
The page loads nothing: each chart is its rendered SVG, with the spec beside it as text,
and a Content-Security-Policy forbids scripts and every fetch.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any

SCHEMA = "https://vega.github.io/schema/vega-lite/v5.json"
_WIDTH, _HEIGHT = 560, 320


@dataclass
class Chart:
    name: str  # a file-name-safe slug, for --png
    title: str
    spec: dict[str, Any]
    svg: str = ""


def series_spec(title: str, x_title: str, y_title: str,
                values: list[dict[str, Any]]) -> dict[str, Any]:
    """Lines of `{x, y, series}` records, one colour per series (a revision)."""
    return {
        "$schema": SCHEMA, "title": title, "width": _WIDTH, "height": _HEIGHT,
        "data": {"values": values},
        "mark": {"type": "line", "point": len(values) <= 500, "tooltip": True},
        "encoding": {
            "x": {"field": "x", "type": "quantitative", "title": x_title},
            "y": {"field": "y", "type": "quantitative", "title": y_title,
                  "scale": {"zero": False}},
            "color": {"field": "series", "type": "nominal", "title": "revision",
                      "sort": None},
            "tooltip": [{"field": "series", "title": "revision"},
                        {"field": "x", "title": x_title}, {"field": "y", "title": y_title}],
        },
    }


def versions_spec(title: str, metric: str, values: list[dict[str, Any]]) -> dict[str, Any]:
    """A metric across model versions: `{version, value, date, stages, commit}` records."""
    axis_values = sorted({v["version"] for v in values})
    return {
        "$schema": SCHEMA, "title": title, "width": _WIDTH, "height": _HEIGHT,
        "data": {"values": values},
        "mark": {"type": "line", "point": {"size": 60}, "tooltip": True},
        "encoding": {
            "x": {"field": "version", "type": "quantitative", "title": "version",
                  "axis": {"values": axis_values, "format": "d"}},
            "y": {"field": "value", "type": "quantitative", "title": metric,
                  "scale": {"zero": False}},
            "tooltip": [{"field": "version", "title": "version"},
                        {"field": "value", "title": metric},
                        {"field": "date", "title": "commit date"},
                        {"field": "stages", "title": "stage"},
                        {"field": "commit", "title": "commit"}],
        },
    }


_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_STYLE = ("body{font-family:sans-serif;margin:2em;color:#222}"
          "figure{margin:0 0 2.5em}pre{background:#f6f6f6;padding:1em;overflow:auto;"
          "max-height:24em}summary{cursor:pointer;color:#555}")


def page(title: str, charts: list[Chart]) -> str:
    """One HTML page: a heading, then each chart's SVG and its spec."""
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>{html.escape(title)}</title>", f"<style>{_STYLE}</style>", "</head>",
        "<body>", f"<h1>{html.escape(title)}</h1>",
    ]
    for chart in charts:
        spec = json.dumps(chart.spec, indent=2, sort_keys=True)
        parts += [f'<figure id="{html.escape(chart.name)}">', chart.svg,
                  "<details><summary>Vega-Lite spec</summary>",
                  f"<pre>{html.escape(spec)}</pre></details>", "</figure>"]
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def slug(text: str) -> str:
    """A file name from untrusted text: no separators, no leading dot."""
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip("._")
    return cleaned[:80] or "plot"

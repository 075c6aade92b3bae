"""What every server-rendered page shares: the template environment and the headers."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

env = Environment(loader=PackageLoader("application.web", "templates"),
                  autoescape=select_autoescape(enabled_extensions=("html",)),
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                "X-Robots-Tag": "noindex", "X-Content-Type-Options": "nosniff"}

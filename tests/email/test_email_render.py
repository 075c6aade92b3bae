"""Rendering: three parts per template, HTML escaped and CSS inlined, missing data is an error."""

from __future__ import annotations

import re

import pytest
from jinja2 import UndefinedError

from service.email.render import environment, render_email


def test_render_gives_a_one_line_subject_a_text_part_and_an_inlined_html_part() -> None:
    rendered = render_email(template="test_message", context={"name": "Ann", "note": None})
    assert rendered.subject == "Rapport test message for Ann"
    assert rendered.text.startswith("Hello Ann,\n")
    assert "<style" not in rendered.html
    assert re.search(r'<h1 style="[^"]*font-size: 20px', rendered.html)
    assert "<table" in rendered.html  # the layout, not a bare fragment


def test_html_is_escaped_but_the_text_part_is_not() -> None:
    rendered = render_email(
        template="test_message", context={"name": "<b>Sam</b>", "note": "Tom & Jerry"}
    )
    assert "&lt;b&gt;Sam&lt;/b&gt;" in rendered.html
    assert "Tom &amp; Jerry" in rendered.html
    assert "Hello <b>Sam</b>," in rendered.text
    assert "Tom & Jerry" in rendered.text


def test_a_subject_cannot_carry_a_second_header_line() -> None:
    rendered = render_email(
        template="test_message", context={"name": "Ann\r\nBcc: evil@example.com", "note": None}
    )
    assert "\n" not in rendered.subject and "\r" not in rendered.subject


def test_a_missing_template_variable_is_an_error_not_a_blank() -> None:
    with pytest.raises(UndefinedError):
        render_email(template="test_message", context={"note": None})


def test_the_layout_loads_nothing_from_the_network() -> None:
    source = environment().loader.get_source(environment(), "_layout.html")[0]  # type: ignore[union-attr]
    assert not re.search(r"(src|href)=\"https?:", source)
    assert "@import" not in source and "<link" not in source

"""Comment Markdown is rendered and sanitised (web/markdown.py): what survives is formatting and web links.

The output of every generated payload is parsed back with the standard library's HTML parser (as a
browser tokenises it) and checked against the policy: only the allowed tags and attributes, links only
http(s)/mailto with rel="nofollow ugc noopener". The same payloads run in Chromium in test_comments_e2e."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from papersift.web.markdown import ATTRIBUTES, LINK_REL, TAGS, render

from .xss_payloads import TEMPLATES, payload


class Policy(HTMLParser):
    """Collects every start tag with its attributes (entities decoded, as a browser sees them)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag


def check_policy(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Policy()
    parser.feed(html)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag in TAGS, (tag, html)
        allowed = ATTRIBUTES.get(tag, set()) | ({"rel"} if tag == "a" else set())
        assert set(attrs) <= allowed, (tag, attrs, html)
        if tag == "a":
            assert attrs.get("rel") == LINK_REL, html
            href = attrs.get("href")
            if href is not None:
                assert href.lower().startswith(("http://", "https://", "mailto:")), html
    return parser.tags


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.lists(payload(), min_size=1, max_size=4).map("\n\n".join))
def test_generated_payloads_leave_only_allowed_tags_attributes_and_web_links(text: str) -> None:
    check_policy(str(render(text)))


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("<>\"'=&#;:/()[]!`*_ \n\tajsvcriptonlegx0123")), max_size=120))
def test_arbitrary_markup_soup_stays_within_the_policy(text: str) -> None:
    check_policy(str(render(text)))


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_alone_is_neutralised(template: str) -> None:
    html = str(render(template.replace("{js}", "window.__xss=1")))
    check_policy(html)
    assert "<script" not in html.lower()


@pytest.mark.parametrize(
    ("markdown", "html"),
    [
        ("**bold** and _it_", "<p><strong>bold</strong> and <em>it</em></p>"),
        (
            "[site](https://example.org/a?b=1&c=2)",
            '<a href="https://example.org/a?b=1&amp;c=2" rel="nofollow ugc noopener">',
        ),
        ("<https://example.org>", '<a href="https://example.org" rel="nofollow ugc noopener">https://example.org</a>'),
        ("[mail](mailto:a@example.org)", '<a href="mailto:a@example.org" rel="nofollow ugc noopener">mail</a>'),
        ("[rel](/api/me)", '<a rel="nofollow ugc noopener">rel</a>'),  # relative: no href
        (
            "![chart](https://example.org/c.png)",
            '<a href="https://example.org/c.png" rel="nofollow ugc noopener">chart</a>',
        ),
        ("a\nb", "<p>a<br>\nb</p>"),
        ("`<b>`", "<p><code>&lt;b&gt;</code></p>"),
        ("<b>raw</b>", "<p>&lt;b&gt;raw&lt;/b&gt;</p>"),
        ("~~gone~~", "<p><s>gone</s></p>"),
    ],
)
def test_what_readers_write_renders_as_expected(markdown: str, html: str) -> None:
    assert html in str(render(markdown))

"""Comment Markdown to safe HTML: markdown-it-py renders, nh3 (the ammonia sanitiser) cleans.

Rendered when shown, not when written: the store keeps only what the reader typed, so a tightened
policy here applies to every stored comment at once, with no migration re-rendering old HTML. An LRU
cache keyed on the text makes a page of comments cost one render per distinct comment.

The policy, in two layers so that a slip in one is caught by the other:
- markdown-it runs with raw HTML off (`<script>` is shown as text) and its own link check (no
  `javascript:`, `vbscript:`, `file:` links); single newlines become line breaks, as readers expect.
- nh3 keeps only text-formatting tags, `href`/`title` on links and `start` on lists; a link survives
  only with an http, https or mailto URL (relative and every other scheme lose their href) and gets
  rel="nofollow ugc noopener". Images become plain links to their URL: no other host's picture loads
  in a reader's browser (tracking pixels, huge files), and the site's CSP refuses them anyway.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup

TAGS = frozenset(
    {"p", "br", "strong", "em", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a", "hr"}
    | {"h1", "h2", "h3", "h4", "h5", "h6"}
)
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow ugc noopener"


def _image_as_link(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    """`![alt](url)` becomes a link reading "alt" (or the URL): nothing loads from another host."""
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    text = self.renderInlineAsText(token.children or [], options, env) or src
    return f'<a href="{escapeHtml(src)}">{escapeHtml(text)}</a>'


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True}).enable("strikethrough")
    md.add_render_rule("image", _image_as_link)
    return md


_MD = _parser()


def _web_links_only(tag: str, attribute: str, value: str) -> str | None:
    """Keep an href only when it is an absolute http(s) or mailto URL (nh3 passes the decoded value)."""
    if tag == "a" and attribute == "href":
        scheme, colon, rest = value.strip().partition(":")
        scheme = scheme.lower()
        if not colon or scheme not in SCHEMES or (scheme != "mailto" and not rest.startswith("//")):
            return None
    return value


@functools.lru_cache(maxsize=4096)
def _render(text: str) -> str:
    html = _MD.render(text)
    return nh3.clean(
        html,
        tags=set(TAGS),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        url_schemes=set(SCHEMES),
        link_rel=LINK_REL,
        attribute_filter=_web_links_only,
        strip_comments=True,
    ).strip()


def render(text: str) -> Markup:
    """The comment's Markdown as sanitised HTML, safe to put into a page as it is."""
    return Markup(_render(text))

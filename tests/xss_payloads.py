"""Generated cross-site-scripting payloads for comment Markdown: the usual vectors (script tags, event
handlers, `javascript:`/`vbscript:`/data: URLs, Markdown link tricks, entity-encoded and nested or unclosed
tags), each setting `window.__xss` when it runs, mutated by case, entities and Markdown wrappers."""

from __future__ import annotations

from hypothesis import strategies as st

JS = ["window.__xss=1", "window['__xss']=1", "window.__xss=1//", "top.__xss=1"]

# {js} is the script; every template is a way to get a browser to run it
TEMPLATES = [
    "<script>{js}</script>",
    "<SCRIPT SRC=data:text/javascript,{js}></SCRIPT>",
    "<scr<script>ipt>{js}</scr</script>ipt>",
    '<img src=x onerror="{js}">',
    "<img src=x onerror={js}//",  # unclosed
    '<svg onload="{js}">',
    '<svg><animate onbegin="{js}" attributeName=x dur=1s>',
    '<body onload="{js}">',
    '<details open ontoggle="{js}">',
    '<iframe src="javascript:{js}"></iframe>',
    '<iframe srcdoc="<script>{js}</script>"></iframe>',
    '<object data="data:text/html,<script>{js}</script>"></object>',
    '<a href="javascript:{js}">x</a>',
    '<a href="jav&#x09;ascript:{js}">x</a>',
    '<math><mi xlink:href="javascript:{js}">x</mi></math>',
    '<input autofocus onfocus="{js}">',
    '<div style="background:url(javascript:{js})">x</div>',
    "<style>@import 'javascript:{js}';</style>",
    "<!--<img src=x onerror={js}>-->",
    '<p title="</p><img src=x onerror={js}>">',
    "[x](javascript:{js})",
    "[x](JaVaScRiPt:{js})",
    "[x]( javascript:{js} )",
    "[x](<javascript:{js}>)",
    "[x](java&#115;cript:{js})",
    "[x](&#x6A;avascript:{js})",
    "[x](vbscript:{js})",
    "[x](data:text/html,<script>{js}</script>)",
    "[x](data:text/html;base64,PHNjcmlwdD53aW5kb3cuX194c3M9MTwvc2NyaXB0Pg==)",
    "![x](javascript:{js})",
    '![x" onerror="{js}](https://example.org/i.png)',
    '[x](https://example.org/" onmouseover="{js})',
    "[x][r]\n\n[r]: javascript:{js}",
    "<javascript:{js}>",
    "[<img src=x onerror={js}>](https://example.org)",
    "[x](https://example.org 'title\" onmouseover=\"{js}')",
    "&lt;script&gt;{js}&lt;/script&gt;",
    "&#60;img src=x onerror={js}&#62;",
    "`<script>{js}</script>`",
    "```html\n<script>{js}</script>\n```",
]

WRAPPERS = [
    "{p}",
    "> {p}",
    "- {p}",
    "1. {p}",
    "**{p}**",
    "_{p}_",
    "# {p}",
    "~~{p}~~",
    "text before {p} after",
    "{p}\n\n{p}",
]


def _entity(ch: str) -> str:
    return f"&#{ord(ch)};"


def _mutate(part: str, mutation: str, positions: set[int]) -> str:
    if mutation == "upper":
        return part.upper()
    if mutation == "swapcase":
        return "".join(c.swapcase() if i % 2 else c for i, c in enumerate(part))
    if mutation == "entities":
        return "".join(_entity(c) if i in positions and c.isalpha() else c for i, c in enumerate(part))
    return part


@st.composite
def payload(draw: st.DrawFn) -> str:
    """One payload: a template maybe case-flipped or with some letters as entities (the script itself is
    left alone, so it still sets the flag if it runs), inside a Markdown construct."""
    template = draw(st.sampled_from(TEMPLATES))
    mutation = draw(st.sampled_from(["none", "upper", "swapcase", "entities"]))
    positions = draw(st.sets(st.integers(0, max(0, len(template) - 1)), max_size=4))
    script = draw(st.sampled_from(JS))
    text = script.join(_mutate(part, mutation, positions) for part in template.split("{js}"))
    return draw(st.sampled_from(WRAPPERS)).replace("{p}", text)

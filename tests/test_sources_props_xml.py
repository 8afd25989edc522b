"""Property-based tests of the arXiv OAI-PMH and API parsers: documents mutated from the real fixtures.

Mutating real responses (new element text, dropped, duplicated, nested or moved elements, odd attributes,
another XML prolog, a DTD) reaches far more of the parsers than random bytes do. The contract is the one
in `sources_props_contract`: Papers and Rejected records, or a SourceError with a message.
"""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET

from hypothesis import example, given, settings
from hypothesis import strategies as st

from papersift.models import Paper, Rejected
from papersift.sources.arxiv_api import ArxivAPISource
from papersift.sources.arxiv_oai import ArxivOAISource

from .conftest import FIXTURES
from .sources_props_contract import arxiv_ids, dates_text, mutate_bytes, odd_text, run_parse

PROPS = settings(max_examples=100, deadline=None)
ARXIV = FIXTURES / "arxiv"
OAI_FILES = ["oai_arxiv_page1.xml", "oai_arxiv_page2.xml", "oai_arxivraw.xml", "oai_error.xml", "oai_no_records.xml"]
API_FILES = ["api_page1.xml", "api_page2.xml", "api_idlist.xml", "api_empty.xml", "api_error.xml"]

# text XML can carry (no C0 controls or surrogates), so most documents stay well-formed and reach the parser
xml_chars = st.characters(exclude_categories=("Cs", "Cc")) | st.sampled_from("\n\t")
element_text = st.one_of(
    st.text(xml_chars, max_size=40),
    odd_text.filter(lambda t: "\x00" not in t),
    dates_text,
    arxiv_ids,
    arxiv_ids.map(lambda i: f"oai:arXiv.org:{i}"),
    arxiv_ids.map(lambda i: f"http://arxiv.org/abs/{i}"),
    st.sampled_from(["v1", "v²", "V3", "v", "-1", "cs.CL cs.LG", "10.1145/1 10.1145/2", "deleted", "noRecordsMatch"]),
    st.sampled_from(["cs  CL ", " Vas  wani ", "a\u3000b", "\u2028"]),
)
attribute_names = st.sampled_from(["version", "term", "href", "title", "type", "status", "code", "rel"])
PROLOGS = [
    b"",
    b'<?xml version="1.0" encoding="UTF-8"?>\n',
    b'<?xml version="1.0" encoding="ISO-8859-1"?>\n',
    b'<?xml version="1.0" encoding="UTF-16"?>\n',
    b'<?xml version="1.0" encoding="x-no-such-codec"?>\n',
    b"\xef\xbb\xbf",
    b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n',
    b'<!DOCTYPE r SYSTEM "file:///etc/passwd">\n',
    b"<!-- a comment first -->\n",
]


def _mutate(root: ET.Element, draw: st.DrawFn) -> None:
    """One structural or textual change somewhere in the tree."""
    parents = {child: parent for parent in root.iter() for child in parent}
    target = draw(st.sampled_from(list(root.iter())))
    parent = parents.get(target)
    kind = draw(st.sampled_from(["text", "text", "attribute", "empty", "drop", "duplicate", "nest", "move"]))
    if kind == "text":
        target.text = draw(element_text)
    elif kind == "attribute":
        target.set(draw(attribute_names), draw(element_text))
    elif kind == "empty":
        target.text = None
        target[:] = []
    elif parent is None:
        return
    elif kind == "drop":
        parent.remove(target)
    elif kind == "duplicate":
        parent.insert(list(parent).index(target), copy.deepcopy(target))
    elif kind == "nest":  # wrap the element in a new one named like its parent (a record inside a record, ...)
        wrapper = ET.Element(parent.tag)
        parent.insert(list(parent).index(target), wrapper)
        parent.remove(target)
        wrapper.append(target)
    else:  # move it under another element that is not inside it
        inside = set(target.iter())
        others = [e for e in root.iter() if e not in inside]
        destination = draw(st.sampled_from(others))
        parent.remove(target)
        destination.append(target)


@st.composite
def mutated_documents(draw: st.DrawFn, names: list[str]) -> bytes:
    original = (ARXIV / draw(st.sampled_from(names))).read_bytes()
    root = ET.fromstring(original)  # our own fixtures: safe to parse with the stdlib
    for _ in range(draw(st.integers(0, 4))):
        _mutate(root, draw)
    body = ET.tostring(root, encoding="unicode").encode()
    data = draw(st.sampled_from(PROLOGS)) + body
    return mutate_bytes(data, draw) if draw(st.integers(0, 4)) == 0 else data


_NESTED_RECORD = (
    b'<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/"><ListRecords><extra><record><metadata>'
    b'<arXiv xmlns="http://arxiv.org/OAI/arXiv/"><id>2101.00001</id><title>T</title></arXiv>'
    b"</metadata></record></extra></ListRecords></OAI-PMH>"
)
_NESTED_ENTRY = (
    b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><entry><id>http://arxiv.org/abs/2101.00001v1</id>'
    b"<title>T</title></entry><id>http://arxiv.org/abs/2101.00002v1</id><title>U</title></entry></feed>"
)


@PROPS
@given(mutated_documents(OAI_FILES))
@example(_NESTED_RECORD)  # container.remove(record) of a record that is not its child: ValueError
@example(b'<?xml version="1.0" encoding="x-no-such-codec"?><OAI-PMH/>')  # LookupError from the XML parser
def test_oai_documents_become_papers_or_rejections(data: bytes) -> None:
    run_parse(ArxivOAISource(), data, "ListRecords.xml")


@PROPS
@given(mutated_documents(API_FILES))
@example(_NESTED_ENTRY)  # feed.remove(entry) of an entry nested in another: ValueError
@example(b'<?xml version="1.0" encoding="x-no-such-codec"?><feed/>')  # LookupError from the XML parser
@example(  # a category term with inner double spaces was kept as it came
    (ARXIV / "api_page1.xml").read_bytes().replace(b'term="cs.CL"', b'term="cs  CL"', 1)
)
def test_api_documents_become_papers_or_rejections(data: bytes) -> None:
    run_parse(ArxivAPISource(), data, "query.atom")


def test_nested_records_are_reported_not_dropped() -> None:
    """A record or entry in the wrong place is a reported rejection; its well-placed neighbours still parse."""
    oai = run_parse(ArxivOAISource(), _NESTED_RECORD, "ListRecords.xml")
    assert [type(r) for r in oai] == [Rejected]
    assert "outside ListRecords" in oai[0].reason  # type: ignore[union-attr]
    api = run_parse(ArxivAPISource(), _NESTED_ENTRY, "query.atom")
    assert [type(r) for r in api] == [Rejected, Paper]
    assert api[1].id == "2101.00002"  # type: ignore[union-attr]

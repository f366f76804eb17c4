"""Secure, bounded XML parsing of PIDF-LO documents (check P01, P02).

Hostile input is refused *before* libxml2 sees it where possible: a size limit,
an up-front DOCTYPE refusal (no DTD ever reaches the parser, so no entity can
be declared, let alone expanded: billion laughs and XXE die here), and a depth
limit. The parser itself is configured defensively as a second line:
``resolve_entities=False, no_network=True, load_dtd=False``.

Charset (RFC 3863 §4.1, RFC 7303 §3): a byte-order mark is authoritative; else
the MIME ``charset`` parameter wins over the XML encoding declaration; else the
declaration; else UTF-8.
"""

from __future__ import annotations

import codecs
import re
import threading
from dataclasses import dataclass

from lxml import etree

from .findings import Findings

DEFAULT_MAX_SIZE = 64 * 1024
# A Prism is 11 levels deep; 40 leaves room for extensions, not for abuse.
DEFAULT_MAX_DEPTH = 40

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_XML_DECL = re.compile(
    r"""<\?xml\s+version\s*=\s*["'][^"']*["']"""
    r"""(?:\s+encoding\s*=\s*["']([^"']*)["'])?"""
)
_TRAILING_POSITION = re.compile(r"\s*\(<string>, line \d+\)\s*$")


@dataclass(slots=True)
class ParsedXml:
    """The parsed tree (``root`` is None when the document was refused)."""

    root: etree._Element | None
    encoding: str | None = None  # encoding actually used to decode
    declared_encoding: str | None = None
    has_declaration: bool = False
    bom: bool = False


_local = threading.local()


def _parser(encoding: str | None, recover: bool = False) -> etree.XMLParser:
    # lxml parsers must not be shared between threads; cache one per encoding.
    cache = getattr(_local, "parsers", None)
    if cache is None:
        cache = _local.parsers = {}
    parser = cache.get((encoding, recover))
    if parser is None:
        parser = etree.XMLParser(
            encoding=encoding,
            recover=recover,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            collect_ids=False,
            remove_blank_text=False,
        )
        cache[(encoding, recover)] = parser
    return parser


def _too_deep(root: etree._Element, max_depth: int) -> bool:
    # Compiled XPath objects are not shared between threads either.
    probes = getattr(_local, "depth_probes", None)
    if probes is None:
        probes = _local.depth_probes = {}
    probe = probes.get(max_depth)
    if probe is None:
        # /*/*/... with max_depth+1 steps: true iff some element is deeper.
        probe = probes[max_depth] = etree.XPath("boolean(/*" + "/*" * max_depth + ")")
    return bool(probe(root))


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name.strip()).name
    except LookupError:
        return None


def _syntax_message(exc: etree.XMLSyntaxError) -> str:
    text = _TRAILING_POSITION.sub("", str(exc)).replace("\n", " ")
    return re.sub(r"\s+,", ",", text).strip()


def _retry_bad_namespace_names(
    data: bytes, encoding: str | None, exc: etree.XMLSyntaxError, findings: Findings
) -> etree._Element | None:
    """A namespace name that is not a valid URI (RFC 4119's civicAddr example has a
    leading space) is a libxml2 warning promoted to an error by lxml; it does not
    break well-formedness, so read the document anyway and let the namespace checks
    (P03, C01) say what is wrong. Anything else stays fatal."""
    # The exception's error_log accumulates across parses; the parser's own log is this parse only.
    errors = list(_parser(encoding).error_log) or list(exc.error_log)
    if not errors or any(e.type_name != "WAR_NS_URI" for e in errors):
        return None
    try:
        root = etree.fromstring(data, _parser(encoding, recover=True))
    except etree.XMLSyntaxError:
        return None
    for message in dict.fromkeys(e.message for e in errors):
        findings.warn("P01", f"namespace name is not a valid URI: {message}")
    return root


def parse_xml(
    data: bytes,
    findings: Findings,
    *,
    charset: str | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> ParsedXml:
    """Parse ``data``; problems become P01/P02 findings, never exceptions."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    elif not isinstance(data, bytes):
        data = bytes(data)
    if len(data) > max_size:
        findings.error("P01", f"document is {len(data)} bytes, over the {max_size}-byte limit; not parsed")
        return ParsedXml(None)
    if not data.strip():
        findings.error("P01", "empty document")
        return ParsedXml(None)

    bom = False
    bom_codec = None
    if data.startswith(_UTF8_BOM):
        data = data[3:]
        bom, bom_codec = True, "utf-8"
    elif data[:2] in _UTF16_BOMS:
        bom, bom_codec = True, "utf-16"
    # The declaration is ASCII in every ASCII-compatible encoding; UTF-16 is
    # recognised by its BOM or by the "<\0?\0" pattern (XML 1.0 App. F).
    if bom_codec == "utf-16" or data[:4] in (b"<\x00?\x00", b"\x00<\x00?"):
        head = data[:400].decode("utf-16-le" if data[:1] in (b"<", b"\xff") else "utf-16-be", "replace").lstrip("\ufeff")
        ascii_compatible = False
        bom_codec = bom_codec or "utf-16"
    else:
        head = data[:200].decode("latin-1")
        ascii_compatible = True
    decl = _XML_DECL.match(head)
    declared = decl.group(1) if decl and decl.group(1) else None
    parsed = ParsedXml(None, declared_encoding=declared, has_declaration=decl is not None, bom=bom)

    if bom and bom_codec == "utf-8":
        findings.info("P02", "UTF-8 byte-order mark present (tolerated and removed)")
    if decl is None:
        # RFC 3863 §4.1: a PIDF document MUST have an XML declaration.
        findings.warn("P02", "no XML declaration (RFC 3863 §4.1)")
    elif declared is None and charset is None:
        findings.warn("P02", "XML declaration has no encoding declaration (RFC 3863 §4.1 SHOULD)")

    declared_codec = _codec(declared)
    if declared and declared_codec is None:
        findings.error("P01", f"unsupported encoding in the XML declaration: {declared!r}")
        return parsed
    charset_codec = _codec(charset)
    if charset and charset_codec is None:
        findings.warn("P02", f"unknown MIME charset {charset!r} ignored")

    # Choose the decoding: BOM > MIME charset > declaration > UTF-8.
    if bom:
        encoding = bom_codec
        if charset_codec and not charset_codec.startswith(_codec(bom_codec)):
            findings.warn("P02", f"MIME charset {charset!r} contradicts the {bom_codec} byte-order mark; the BOM wins (RFC 7303 §3)")
    elif charset_codec:
        encoding = charset.strip()
        if declared_codec and declared_codec != charset_codec:
            findings.warn(
                "P02",
                f"MIME charset {charset!r} differs from the XML declaration encoding {declared!r}; "
                "the charset wins (RFC 3863 §4.1)",
            )
    elif declared_codec:
        encoding = declared
    else:
        encoding = "utf-8"
    parsed.encoding = _codec(encoding)

    # Refuse any DTD up front: entity declarations are only possible inside one.
    if ascii_compatible and not (parsed.encoding or "").startswith(("utf-16", "utf-32")):
        doctype = b"<!DOCTYPE" in data or b"<!ENTITY" in data
    else:
        text = data.decode(parsed.encoding or "utf-16", "replace")
        doctype = "<!DOCTYPE" in text or "<!ENTITY" in text
    if doctype:
        findings.error("P01", "document type declaration (DOCTYPE/ENTITY) refused: no DTDs, no entity expansion")
        return parsed

    try:
        root = etree.fromstring(data, _parser(encoding))
    except etree.XMLSyntaxError as exc:
        root = _retry_bad_namespace_names(data, encoding, exc, findings)
        if root is None:
            findings.error("P01", f"not well-formed or not namespace-well-formed XML: {_syntax_message(exc)}")
            return parsed
    except (LookupError, ValueError) as exc:  # encoding libxml2 does not know
        findings.error("P01", f"document could not be decoded as {encoding!r}: {exc}")
        return parsed
    if _too_deep(root, max_depth):
        findings.error("P01", f"document nests deeper than {max_depth} elements; refused")
        return parsed
    parsed.root = root
    return parsed

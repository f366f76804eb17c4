"""Small document and message builders for the pidf unit tests (test-only)."""

from __future__ import annotations

from datetime import datetime, timezone

from pidf import Conveyance, MimePart, Report, validate_conveyance, validate_document

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
TS = "2025-06-01T11:55:00Z"
DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
NAMESPACES = (
    'xmlns="urn:ietf:params:xml:ns:pidf" '
    'xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" '
    'xmlns:gbp="urn:ietf:params:xml:ns:pidf:geopriv10:basicPolicy" '
    'xmlns:ca="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr" '
    'xmlns:cae="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr:ext" '
    'xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" '
    'xmlns:gml="http://www.opengis.net/gml" '
    'xmlns:gs="http://www.opengis.net/pidflo/1.0" '
    'xmlns:ms="urn:schema:Rtc.LIS.msftE911PidfExtn.2008"'
)
FIELDS = (
    "<ca:country>US</ca:country><ca:A1>WA</ca:A1><ca:A3>Redmond</ca:A3><ca:RD>156th</ca:RD>"
    "<ca:STS>Ave</ca:STS><ca:POD>NE</ca:POD><ca:HNO>4600</ca:HNO><ca:PC>98052</ca:PC>"
)
USAGE = "<gp:usage-rules><gbp:retransmission-allowed>false</gbp:retransmission-allowed></gp:usage-rules>"
METHOD = "<gp:method>Manual</gp:method>"
CRS2 = "urn:ogc:def:crs:EPSG::4326"
CRS3 = "urn:ogc:def:crs:EPSG::4979"
M = "urn:ogc:def:uom:EPSG::9001"
DEG = "urn:ogc:def:uom:EPSG::9102"
RAD = "urn:ogc:def:uom:EPSG::9101"


def civic(fields: str = FIELDS) -> str:
    return f"<ca:civicAddress>{fields}</ca:civicAddress>"


def geopriv(info: str | None = None, usage: str = USAGE, method: str = METHOD, extra: str = "") -> str:
    info = civic() if info is None else info
    return f"<gp:geopriv><gp:location-info>{info}</gp:location-info>{usage}{method}{extra}</gp:geopriv>"


def document(
    info: str | None = None,
    *,
    usage: str = USAGE,
    method: str = METHOD,
    ts: str | None = TS,
    tid: str | None = "t1",
    entity: str | None = "sip:alice@example.com",
    status_extra: str = "",
    tuple_extra: str = "",
    root_extra: str = "",
    geopriv_extra: str = "",
    decl: str = DECL,
    body: str | None = None,
) -> bytes:
    """A one-tuple civic document by default; each argument swaps one piece."""
    if body is None:
        id_attr = f' id="{tid}"' if tid is not None else ""
        stamp = f"<timestamp>{ts}</timestamp>" if ts is not None else ""
        body = (
            f"<tuple{id_attr}><status>{geopriv(info, usage, method, geopriv_extra)}{status_extra}</status>"
            f"{tuple_extra}{stamp}</tuple>"
        )
    ent = f' entity="{entity}"' if entity is not None else ""
    return f"{decl}<presence {NAMESPACES}{ent}>{body}{root_extra}</presence>".encode()


def shape_doc(shape: str, **kw) -> bytes:
    kw.setdefault("method", "<gp:method>GPS</gp:method>")
    return document(shape, **kw)


def point(pos: str = "47.6406 -122.1281", srs: str | None = CRS2) -> str:
    attr = f' srsName="{srs}"' if srs else ""
    return f"<gml:Point{attr}><gml:pos>{pos}</gml:pos></gml:Point>"


def polygon(pos_list: str, srs: str = CRS2) -> str:
    return (
        f'<gml:Polygon srsName="{srs}"><gml:exterior><gml:LinearRing><gml:posList>{pos_list}</gml:posList>'
        "</gml:LinearRing></gml:exterior></gml:Polygon>"
    )


def check(data: bytes, **kw) -> Report:
    kw.setdefault("now", NOW)
    return validate_document(data, **kw)


def found(report: Report, check_id: str, severity: str | None = None) -> list:
    return [f for f in report.findings if f.id == check_id and (severity is None or f.severity == severity)]


def has(report: Report, check_id: str, severity: str | None = None) -> bool:
    return bool(found(report, check_id, severity))


# ---------------------------------------------------------------- conveyance views (no SIP parsing)

SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
CID = "loc1@example.com"


def pidf_part(content: bytes | None = None, cid: str | None = CID, ctype: str = "application/pidf+xml", extra: list | None = None) -> MimePart:
    headers = [("Content-Type", ctype)]
    if cid is not None:
        headers.append(("Content-ID", f"<{cid}>"))
    headers.extend(extra or [])
    return MimePart(headers, document() if content is None else content)


def sdp_part() -> MimePart:
    return MimePart([("Content-Type", "application/sdp")], SDP)


def body_of(parts: list[MimePart], boundary: str = "b1") -> bytes:
    out = b""
    for p in parts:
        out += f"--{boundary}\r\n".encode()
        out += b"".join(f"{n}: {v}\r\n".encode() for n, v in p.headers)
        out += b"\r\n" + p.content + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def conveyance(
    parts: list[MimePart] | None = None,
    *,
    headers: list[tuple[str, str]] | None = None,
    geolocation: list[str] | None = None,
    boundary: str = "b1",
    content_type: str | None = None,
    request_uri: str = "sip:911@sbc.example.com;user=phone",
    defects: list[str] | None = None,
    body: bytes | None = None,
    content_length: int | None = None,
    split: bool = True,
) -> Conveyance:
    """An emergency INVITE's neutral view: SDP + PIDF by default, Geolocation cid to it."""
    if parts is None:
        parts = [sdp_part(), pidf_part()]
    if body is None:
        body = body_of(parts, boundary) if parts else b""
    hdrs = [
        ("From", "<sip:alice@example.com>;tag=1"),
        ("To", "<sip:911@sbc.example.com;user=phone>"),
        ("Call-ID", "c1@example.com"),
        ("Priority", "emergency"),
    ]
    for g in [f"<cid:{CID}>"] if geolocation is None else geolocation:
        hdrs.append(("Geolocation", g))
    hdrs.extend(headers or [])
    if content_type is None and parts:
        content_type = f"multipart/mixed;boundary={boundary}"
    if content_type is not None:
        hdrs.append(("Content-Type", content_type))
    hdrs.append(("Content-Length", str(len(body) if content_length is None else content_length)))
    multipart = content_type is not None and content_type.lower().startswith("multipart/")
    return Conveyance(
        headers=hdrs,
        body=body,
        parts=parts if (multipart and split) else None,
        body_defects=defects or [],
        request_uri=request_uri,
    )


def check_conveyance(conv: Conveyance, **kw) -> Report:
    kw.setdefault("now", NOW)
    return validate_conveyance(conv, **kw)

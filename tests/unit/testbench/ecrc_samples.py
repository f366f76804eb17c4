"""Sample INVITEs as they reach the mock ECRC: RFC-clean, stripped, Lync-style, 933 test calls.

Messages are written with LF here and sent with CRLF; Content-Length is computed unless a
sample states its own.
"""

from __future__ import annotations

from datetime import datetime, timezone

ARRIVED_AT = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)

SDP = """v=0
o=alice 2890844526 2890844526 IN IP4 192.0.2.10
s=-
c=IN IP4 192.0.2.10
t=0 0
m=audio 49170 RTP/AVP 0 8
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
"""

CLEAN_PIDF = """<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"
    xmlns:bp="urn:ietf:params:xml:ns:pidf:geopriv10:basicPolicy"
    xmlns:ca="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    entity="pres:alice@example.com">
  <dm:device id="d1">
    <gp:geopriv>
      <gp:location-info>
        <ca:civicAddress xml:lang="en">
          <ca:country>US</ca:country>
          <ca:A1>WA</ca:A1>
          <ca:A3>Redmond</ca:A3>
          <ca:RD>163rd</ca:RD>
          <ca:STS>Ave</ca:STS>
          <ca:POD>NE</ca:POD>
          <ca:HNO>3910</ca:HNO>
          <ca:FLR>4</ca:FLR>
          <ca:PC>98052</ca:PC>
        </ca:civicAddress>
      </gp:location-info>
      <gp:usage-rules>
        <bp:retransmission-allowed>true</bp:retransmission-allowed>
      </gp:usage-rules>
      <gp:method>Manual</gp:method>
    </gp:geopriv>
    <dm:deviceID>mac:00005e005301</dm:deviceID>
    <dm:timestamp>2024-05-01T11:59:30Z</dm:timestamp>
  </dm:device>
</presence>
"""

LYNC_PIDF = """<?xml version="1.0" encoding="utf-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
  xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"
  xmlns:bp="urn:ietf:params:xml:ns:pidf:geopriv10:basicPolicy"
  xmlns:ca="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr"
  xmlns:ms="urn:schema:Rtc.LIS.msftE911PidfExtn.2008"
  entity="sip:voip_911_user1@contoso.com">
 <tuple id="0"><status>
  <gp:geopriv>
   <gp:location-info><ca:civicAddress>
     <ca:country>US</ca:country><ca:A1>WA</ca:A1><ca:A3>Redmond</ca:A3>
     <ca:RD>163rd</ca:RD><ca:STS>Ave</ca:STS><ca:POD>NE</ca:POD><ca:HNO>3910</ca:HNO>
     <ca:LOC>40/4451</ca:LOC><ca:NAM>1111-222-333; 1234567890 </ca:NAM><ca:PC>98052</ca:PC>
   </ca:civicAddress></gp:location-info>
   <gp:usage-rules><bp:retransmission-allowed>true</bp:retransmission-allowed></gp:usage-rules>
  </gp:geopriv>
  <ms:msftE911PidfExtn>
   <ms:ConferenceUri>sip:+14255550199@contoso.com;user=phone</ms:ConferenceUri>
   <ms:ConferenceMode>twoway</ms:ConferenceMode>
   <LocationPolicyTagID xmlns="urn:schema:Rtc.Lis.LocationPolicyTagID.2008">user-tagid</LocationPolicyTagID>
  </ms:msftE911PidfExtn>
 </status><timestamp>1991-09-22T13:37:31.03</timestamp></tuple></presence>
"""

GEODETIC_PIDF = """<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"
    xmlns:gml="http://www.opengis.net/gml"
    xmlns:gs="http://www.opengis.net/pidflo/1.0"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    entity="pres:bob@example.com">
  <dm:device id="d1">
    <gp:geopriv>
      <gp:location-info>
        <gs:Circle srsName="urn:ogc:def:crs:EPSG::4326">
          <gml:pos>47.6395 -122.1297</gml:pos>
          <gs:radius uom="urn:ogc:def:uom:EPSG::9001">30</gs:radius>
        </gs:Circle>
      </gp:location-info>
      <gp:usage-rules/>
      <gp:method>GPS</gp:method>
    </gp:geopriv>
    <dm:timestamp>2024-05-01T11:59:50Z</dm:timestamp>
  </dm:device>
</presence>
"""


def crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def sip(head: str, body: bytes = b"", *, content_length: int | None = None) -> bytes:
    """A message from its start line and headers (LF-separated) and its body bytes."""
    length = len(body) if content_length is None else content_length
    return crlf(head.strip("\n") + f"\nContent-Length: {length}\n\n") + body


def multipart(boundary: str, parts: list[tuple[str, str]]) -> bytes:
    """parts: (part headers, content); CRLF line ends throughout."""
    out = b""
    for index, (headers, content) in enumerate(parts):
        if index:
            out += b"\r\n"
        out += crlf(f"--{boundary}\n{headers.strip()}\n\n") + crlf(content.rstrip("\n"))
    return out + crlf(f"\n--{boundary}--\n")


def rfc_clean_invite() -> bytes:
    body = multipart(
        "boundary1",
        [
            ("Content-Type: application/sdp", SDP),
            (
                "Content-Type: application/pidf+xml\nContent-ID: <target123@example.com>\n"
                "Content-Disposition: by-reference;handling=optional",
                CLEAN_PIDF,
            ),
        ],
    )
    return sip(
        """INVITE sip:911@ecrc.example.net SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
From: "Alice" <sip:alice@example.com>;tag=1928301774
To: <sip:911@ecrc.example.net>
Call-ID: a84b4c76e66710@192.0.2.10
CSeq: 314159 INVITE
Contact: <sip:alice@192.0.2.10:5060>
P-Asserted-Identity: <sip:+14255550100@example.com;user=phone>
Priority: emergency
Call-Info: <urn:emergency:uid:callid:abcdef1234567890:example.com>;purpose=emergency-CallId
Geolocation: <cid:target123@example.com>
Geolocation-Routing: yes
User-Agent: TestPhone/1.0
Content-Type: multipart/mixed;boundary=boundary1""",
        body,
    )


def stripped_invite(*, from_user: str = "+14255550100") -> bytes:
    return sip(
        f"""INVITE sip:911@ecrc.example.net SIP/2.0
Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bKstripped
Max-Forwards: 69
From: <sip:{from_user}@sbc.example.com;user=phone>;tag=s1
To: <sip:911@ecrc.example.net>
Call-ID: stripped-1@192.0.2.20
CSeq: 1 INVITE
Contact: <sip:{from_user}@192.0.2.20:5060>
Content-Type: application/sdp""",
        crlf(SDP),
    )


LYNC_BOUNDARY = "------=_NextPart_000_4A6D"


def lync_invite() -> bytes:
    # Microsoft's E911 example ([MS-SIPRE] §4.14, e911-reference §1.3): upper-case header
    # names, `boundary= ------=...` (space, unquoted tspecial), cid:sip: vs Content-ID
    # mismatch, tuple id="0", timestamp without offset.
    body = multipart(
        LYNC_BOUNDARY,
        [
            ("Content-Type: application/sdp ; charset=utf-8", SDP),
            ("Content-Type: application/pidf+xml\nContent-ID: <voip_911_user1@contoso.com>", LYNC_PIDF),
        ],
    )
    return sip(
        f"""INVITE sip:911;phone-context=Redmond@192.168.1.12;user=phone SIP/2.0
Via: SIP/2.0/TLS 192.168.1.5:5061;branch=z9hG4bKlync1
Max-Forwards: 70
From: "voip_911_user1"<sip:voip_911_user1@contoso.com>;epid=1D19090AED;tag=a1b2c3
To: <sip:911;phone-context=Redmond@192.168.1.12;user=phone>
Call-ID: lync-e911-1@contoso.com
CSeq: 1 INVITE
CONTACT: <sip:voip_911_user1@contoso.com;opaque=user:epid:abc;gruu>;text;audio;video;image
PRIORITY: emergency
Supported: geolocation
CONTENT-TYPE: multipart/mixed; boundary= {LYNC_BOUNDARY}
geolocation: <cid:sip:voip_911_user1@contoso.com>;inserted-by="sip:voip_911_user1@contoso.com"
""",
        body,
    )


def call_933_invite(*, with_location: bool = True, uri: str = "sip:933@ecrc.example.net") -> bytes:
    head = f"""INVITE {uri} SIP/2.0
Via: SIP/2.0/TCP 192.0.2.30:5060;branch=z9hG4bK933
Max-Forwards: 70
From: <sip:lync-user@contoso.com>;tag=t933
To: <{uri}>
Call-ID: test-933@192.0.2.30
CSeq: 7 INVITE
P-Asserted-Identity: <tel:+14255550100>
Priority: emergency"""
    if not with_location:
        return sip(head + "\nContent-Type: application/sdp", crlf(SDP))
    body = multipart(
        "b933",
        [
            ("Content-Type: application/sdp", SDP),
            ("Content-Type: application/pidf+xml\nContent-ID: <loc933@contoso.com>", LYNC_PIDF),
        ],
    )
    return sip(head + "\nGeolocation: <cid:loc933@contoso.com>\nContent-Type: multipart/mixed; boundary=b933", body)


def geodetic_single_part_invite() -> bytes:
    # RFC 8262: a lone PIDF-LO body referenced through a SIP-level Content-ID.
    return sip(
        """INVITE urn:service:sos SIP/2.0
Via: SIP/2.0/UDP 192.0.2.40:5060;branch=z9hG4bKgeo
Max-Forwards: 70
From: <sip:+14255550111@example.com>;tag=g1
To: <urn:service:sos>
Call-ID: geo-1@192.0.2.40
CSeq: 1 INVITE
Priority: emergency
Geolocation: <cid:geo1@example.com>
Geolocation-Routing: yes
Content-ID: <geo1@example.com>
Content-Type: application/pidf+xml""",
        crlf(GEODETIC_PIDF),
    )


def by_reference_invite() -> bytes:
    return sip(
        """INVITE sip:911@ecrc.example.net SIP/2.0
Via: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKref
Max-Forwards: 70
From: <sip:+14255550122@example.com>;tag=r1
To: <sip:911@ecrc.example.net>
Call-ID: ref-1@192.0.2.50
CSeq: 1 INVITE
Priority: emergency
Supported: geolocation-http
Geolocation: <https://lis.example.com/loc/8a7b6c>
Content-Type: application/sdp""",
        crlf(SDP),
    )


SAMPLES = {
    "rfc_clean": rfc_clean_invite,
    "stripped": stripped_invite,
    "lync": lync_invite,
    "test_call": call_933_invite,
    "geodetic": geodetic_single_part_invite,
    "by_reference": by_reference_invite,
}

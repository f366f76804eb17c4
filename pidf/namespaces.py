"""Namespace URIs and precompiled qualified names (Clark notation) for PIDF-LO.

Everything here is a constant so the hot path compares ``element.tag`` against
interned strings instead of evaluating XPath (reference §2.1).
"""

from __future__ import annotations

# RFC 3863 §4.1.1 (the prose shows a trailing colon; the schema does not).
PIDF = "urn:ietf:params:xml:ns:pidf"
# RFC 4479 §5.1.2
DM = "urn:ietf:params:xml:ns:pidf:data-model"
# RFC 4119 §2.2.5
GP = "urn:ietf:params:xml:ns:pidf:geopriv10"
GBP = "urn:ietf:params:xml:ns:pidf:geopriv10:basicPolicy"
# RFC 5139 §4; civicLoc is the obsolete RFC 4119 namespace.
CA = "urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr"
CIVIC_LOC = "urn:ietf:params:xml:ns:pidf:geopriv10:civicLoc"
# RFC 6848
CAE = "urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr:ext"
# GML 3.1.1 and the OGC 06-142r1 GeoShape application schema.
GML = "http://www.opengis.net/gml"
GS = "http://www.opengis.net/pidflo/1.0"
# GML 3.0 namespace used by the RFC 4119 example; deprecated by RFC 5491 §4.
GML30 = "urn:opengis:specification:gml:schema-xsd:feature:v3.0"
# RFC 7459 confidence, RFC 5962 dynamic.
CON = "urn:ietf:params:xml:ns:geopriv:conf"
DYN = "urn:ietf:params:xml:ns:pidf:geopriv10:dynamic"
# provided-by children (RFC 4119 App. A; RFC 7852 §6.2-6.3)
DATA_PROVIDER = "urn:ietf:params:xml:ns:pidf:geopriv10:dataProvider"
ECD = "urn:ietf:params:xml:ns:EmergencyCallData"
# Microsoft [MS-SIPRE] §9: note the different capitalisation LIS / Lis.
MS_EXT = "urn:schema:Rtc.LIS.msftE911PidfExtn.2008"
MS_TAG = "urn:schema:Rtc.Lis.LocationPolicyTagID.2008"
XML = "http://www.w3.org/XML/1998/namespace"

# Conventional prefixes used by the builder (Ng911Lib / RFC example set).
PREFIXES = {
    None: PIDF,
    "dm": DM,
    "gp": GP,
    "gbp": GBP,
    "ca": CA,
    "cae": CAE,
    "gml": GML,
    "gs": GS,
    "con": CON,
}


def q(ns: str, local: str) -> str:
    """Clark-notation name ``{ns}local``."""
    return "{" + ns + "}" + local


def split(tag: str) -> tuple[str | None, str]:
    """Split a Clark name into (namespace or None, local name)."""
    if tag[:1] == "{":
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return None, tag


# PIDF core
PRESENCE = q(PIDF, "presence")
TUPLE = q(PIDF, "tuple")
STATUS = q(PIDF, "status")
BASIC = q(PIDF, "basic")
CONTACT = q(PIDF, "contact")
NOTE = q(PIDF, "note")
TIMESTAMP = q(PIDF, "timestamp")
# data model
DEVICE = q(DM, "device")
PERSON = q(DM, "person")
DEVICE_ID = q(DM, "deviceID")
DM_NOTE = q(DM, "note")
DM_TIMESTAMP = q(DM, "timestamp")
# geopriv
GEOPRIV = q(GP, "geopriv")
LOCATION_INFO = q(GP, "location-info")
USAGE_RULES = q(GP, "usage-rules")
METHOD = q(GP, "method")
PROVIDED_BY = q(GP, "provided-by")
# basic policy (RFC 4119 §2.2.5 schema names are authoritative)
RETRANSMISSION_ALLOWED = q(GBP, "retransmission-allowed")
RETENTION_EXPIRY = q(GBP, "retention-expiry")
EXTERNAL_RULESET = q(GBP, "external-ruleset")
NOTE_WELL = q(GBP, "note-well")
USAGE_RULE_ORDER = {
    "retransmission-allowed": 0,
    "retention-expiry": 1,
    "external-ruleset": 2,
    "note-well": 3,
}
# RFC 4119 prose names that implementations copied instead of the schema names.
USAGE_RULE_PROSE_NAMES = {
    "retention-expires": "retention-expiry",
    "ruleset-reference": "external-ruleset",
}
# civic
CIVIC_ADDRESS = q(CA, "civicAddress")
# geodetic
GML_POS = q(GML, "pos")
GML_POS_LIST = q(GML, "posList")
GML_EXTERIOR = q(GML, "exterior")
GML_LINEAR_RING = q(GML, "LinearRing")
GML_POLYGON = q(GML, "Polygon")
GML_POINT = q(GML, "Point")
GS_BASE = q(GS, "base")
# Microsoft
MS_EXTENSION = q(MS_EXT, "msftE911PidfExtn")
MS_CONFERENCE_URI = q(MS_EXT, "ConferenceUri")
MS_CONFERENCE_MODE = q(MS_EXT, "ConferenceMode")
MS_LOCATION_POLICY_TAG = q(MS_TAG, "LocationPolicyTagID")
XML_LANG = q(XML, "lang")

# The eight RFC 5491 §5 shapes and the namespace each MUST be in.
SHAPE_NAMESPACES = {
    "Point": GML,
    "Polygon": GML,
    "Circle": GS,
    "Ellipse": GS,
    "ArcBand": GS,
    "Sphere": GS,
    "Ellipsoid": GS,
    "Prism": GS,
}
# Namespaces in which a shape element is still recognised (tolerant reading,
# reported by G01/G07): GML 3.1.1, GeoShape and the deprecated GML 3.0.
GEO_NAMESPACES = frozenset({GML, GS, GML30})
# Civic namespaces recognised (civicLoc only to report C01).
CIVIC_NAMESPACES = frozenset({CA, CIVIC_LOC})

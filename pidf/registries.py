"""Reference data the checks compare against: ISO 3166 codes (C03, C04), the
IANA method-token registry (P14), SIP Priority tokens and emergency numbers (S14).
"""

from __future__ import annotations

# ISO 3166-1 alpha-2, officially assigned codes (249). RFC 5139 §3.3.
ISO3166_ALPHA2 = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """.split()
)
# Common wrong spellings and what was meant (the RFC 6848 example uses UK).
COUNTRY_HINTS = {
    "UK": "GB",
    "USA": "US",
    "CAN": "CA",
    "GBR": "GB",
    "DEU": "DE",
    "AUS": "AU",
    "MEX": "MX",
    "FRA": "FR",
    "GERMANY": "DE",
    "UNITED STATES": "US",
    "CANADA": "CA",
}

# ISO 3166-2 subdivision codes (part after "CC-") for the countries this bench
# routes; other countries get a syntactic check only.
SUBDIVISIONS = {
    "US": frozenset(
        """AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH
        NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC AS GU MP PR UM VI""".split()
    ),
    "CA": frozenset("AB BC MB NB NL NS NT NU ON PE QC SK YT".split()),
    "AU": frozenset("ACT NSW NT QLD SA TAS VIC WA".split()),
}
US_STATE_NAMES = {
    "ALABAMA": "AL", "ALASKA": "AK", "ARIZONA": "AZ", "ARKANSAS": "AR", "CALIFORNIA": "CA",
    "COLORADO": "CO", "CONNECTICUT": "CT", "DELAWARE": "DE", "FLORIDA": "FL", "GEORGIA": "GA",
    "HAWAII": "HI", "IDAHO": "ID", "ILLINOIS": "IL", "INDIANA": "IN", "IOWA": "IA", "KANSAS": "KS",
    "KENTUCKY": "KY", "LOUISIANA": "LA", "MAINE": "ME", "MARYLAND": "MD", "MASSACHUSETTS": "MA",
    "MICHIGAN": "MI", "MINNESOTA": "MN", "MISSISSIPPI": "MS", "MISSOURI": "MO", "MONTANA": "MT",
    "NEBRASKA": "NE", "NEVADA": "NV", "NEW HAMPSHIRE": "NH", "NEW JERSEY": "NJ", "NEW MEXICO": "NM",
    "NEW YORK": "NY", "NORTH CAROLINA": "NC", "NORTH DAKOTA": "ND", "OHIO": "OH", "OKLAHOMA": "OK",
    "OREGON": "OR", "PENNSYLVANIA": "PA", "RHODE ISLAND": "RI", "SOUTH CAROLINA": "SC",
    "SOUTH DAKOTA": "SD", "TENNESSEE": "TN", "TEXAS": "TX", "UTAH": "UT", "VERMONT": "VT",
    "VIRGINIA": "VA", "WASHINGTON": "WA", "WEST VIRGINIA": "WV", "WISCONSIN": "WI", "WYOMING": "WY",
    "DISTRICT OF COLUMBIA": "DC", "PUERTO RICO": "PR",
}  # fmt: skip

# IANA "Method Tokens" registry (RFC 4119 §6.1, first come first served).
# Read from the IANA registry pages (2022 edition); compare case-insensitively.
METHOD_TOKENS = frozenset(
    """
    GPS A-GPS Manual DHCP Triangulation Cell 802.11 AOA best-guess Derived
    Device-Assisted_A-GPS Device-Assisted_EOTD Device-Based_A-GPS Device-Based_EOTD
    E-CID GNSS A-GNSS Handset_AFLT Handset_EFLT Hybrid_A-GPS hybridAGPS IPDL DBH DBH_HELO DBH2
    ELS-BLE ELS-WiFi
    """.split()
)
METHOD_BY_FOLDED = {m.lower(): m for m in METHOD_TOKENS}
# Used in RFC 5491 examples; not confirmed as registered (reference §2.2).
METHOD_EXAMPLE_TOKENS = {t.lower(): t for t in ("Wiremap", "OTDOA", "TA-NMR")}

# RFC 3261 §20.26 plus RFC 7090 psap-callback.
PRIORITY_TOKENS = frozenset({"non-urgent", "normal", "urgent", "emergency", "psap-callback"})
# Dial strings that mark an emergency call (after stripping "+", Lync prepends it)
# and the provider test number 933 (reference §1.9).
EMERGENCY_DIAL_STRINGS = frozenset({"911", "112", "999", "000", "110", "119"})
TEST_DIAL_STRINGS = frozenset({"933"})

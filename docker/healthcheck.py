"""Container health check of the e911-b2bua image (Dockerfile HEALTHCHECK).

HEALTH_URL=http://127.0.0.1:8070/health  GET it; healthy when it answers 200 (the ECRC's and the
                                           PSTN gateway's API, the B2BUA's admin API).
HEALTH_SIP=198.18.100.20:5060             send a SIP OPTIONS over UDP; healthy on any SIP answer
                                           (a B2BUA without an admin API answers OPTIONS itself).
Neither: healthy (a one-off command). Exit 0 healthy, 1 not. Standard library only.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.request
import uuid

TIMEOUT_S = 3.0


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as reply:  # noqa: S310 - a URL we were given
            return reply.status == 200
    except OSError:
        return False


def sip_ok(target: str) -> bool:
    host, _, port = target.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT_S)
        sock.connect((host, int(port)))
        local_host, local_port = sock.getsockname()[:2]
        branch = "z9hG4bK" + uuid.uuid4().hex[:16]
        request = (
            f"OPTIONS sip:{target} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {local_host}:{local_port};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:healthcheck@{local_host}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:{target}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}@healthcheck\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        try:
            sock.send(request.encode())
            answer = sock.recv(65535)
        except OSError:
            return False
    return answer.startswith(b"SIP/2.0 ")


def main() -> int:
    url, sip = os.environ.get("HEALTH_URL"), os.environ.get("HEALTH_SIP")
    if url:
        return 0 if http_ok(url) else 1
    if sip:
        return 0 if sip_ok(sip) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

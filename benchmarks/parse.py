"""Parse + serialize throughput of the SIP message layer, against `sipmessage`.

Two messages from the test corpus (tests/fixtures/sip/): a typical emergency INVITE with a
multipart/mixed SDP + PIDF-LO body (about 2 KB) and a 200 OK with an SDP answer. Each is
measured three ways, for our parser and for sipmessage on the same bytes in the same run:

  parse        bytes -> message object. Not the same work: ours also parses and checks
               Via, From, To, CSeq (and a request's Contact) so a bad message is refused
               at the edge; sipmessage only splits the header lines.
  parse+read   ... then read Via, From, To, CSeq, Call-ID, Contact as typed values: the
               same work on both sides
  parse+write  parse, then serialize back to bytes (ours re-emits the received bytes)
  +parts       parse+read, then split the multipart body into parts (ours only:
               sipmessage has no multipart support)

Loops are bounded (a fixed number of iterations, best of a few repeats, the two parsers
timed alternately, CPU time). `--quick` makes them short enough for CI. Prints one table
with messages per CPU-second and the ratio ours/sipmessage.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sipmessage  # noqa: E402

from b2bua.sip import parse_message  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "sip"
MESSAGES = {
    "emergency INVITE": FIXTURES / "linphone-emergency-invite.sip",
    "200 OK": FIXTURES / "200-ok-invite.sip",
}


def ours_parse(data: bytes) -> object:
    return parse_message(data)


def ours_read(data: bytes) -> object:
    message = parse_message(data)
    return message.via, message.from_, message.to, message.cseq, message.call_id, message.contact


def ours_parts(data: bytes) -> object:
    message = parse_message(data)
    message.via, message.from_, message.to, message.cseq, message.call_id, message.contact  # noqa: B018
    multipart = message.multipart
    return multipart.parts if multipart is not None else None


def ours_write(data: bytes) -> bytes:
    return parse_message(data).to_bytes()


def theirs_parse(data: bytes) -> object:
    return sipmessage.Message.parse(data)


def theirs_read(data: bytes) -> object:
    message = sipmessage.Message.parse(data)
    return message.via, message.from_address, message.to_address, message.cseq, message.call_id, message.contact


def theirs_write(data: bytes) -> bytes:
    return bytes(sipmessage.Message.parse(data))


CASES: list[tuple[str, Callable[[bytes], object], Callable[[bytes], object] | None]] = [
    ("parse", ours_parse, theirs_parse),
    ("parse+read", ours_read, theirs_read),
    ("parse+write", ours_write, theirs_write),
    ("+parts", ours_parts, None),
]


def _time(function: Callable[[bytes], object], data: bytes, iterations: int) -> float:
    """CPU seconds for `iterations` calls: CPU time, not wall time, so that other work on a
    shared machine disturbs the figures less."""
    start = time.process_time()
    for _ in range(iterations):
        function(data)
    return time.process_time() - start


def rates(ours: Callable[[bytes], object], theirs: Callable[[bytes], object] | None, data: bytes,
          iterations: int, repeats: int) -> tuple[float, float | None]:
    """Best messages/s of each over `repeats` runs of `iterations` calls (bounded loops).

    The two are timed alternately, so a busy machine slows both alike and the ratio
    stays meaningful.
    """
    ours(data)  # warm caches and imports outside the timing
    if theirs is not None:
        theirs(data)
    best_ours = best_theirs = float("inf")
    for _ in range(repeats):
        best_ours = min(best_ours, _time(ours, data, iterations))
        if theirs is not None:
            best_theirs = min(best_theirs, _time(theirs, data, iterations))
    return iterations / best_ours, (iterations / best_theirs if theirs is not None else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (CI smoke test)")
    parser.add_argument("--iterations", type=int, default=None, help="calls per repeat")
    parser.add_argument("--repeats", type=int, default=None, help="repeats (best is kept)")
    args = parser.parse_args(argv)
    iterations = args.iterations or (200 if args.quick else 2000)
    repeats = args.repeats or (3 if args.quick else 15)

    print(f"python {sys.version.split()[0]}, sipmessage {sipmessage.__version__}, "
          f"{iterations} iterations x {repeats} repeats (best)")
    header = f"{'message':<18} {'bytes':>5}  {'operation':<12} {'ours msg/s':>11} {'sipmessage':>11} {'ours/theirs':>11}"
    print(header)
    print("-" * len(header))
    for label, path in MESSAGES.items():
        data = path.read_bytes()
        # Both parsers must understand the message, or the comparison means nothing.
        assert parse_message(data).to_bytes() == data, f"{path.name}: ours does not round-trip"
        sipmessage.Message.parse(data)
        for operation, ours, theirs in CASES:
            mine, other = rates(ours, theirs, data, iterations, repeats)
            if other is None:
                print(f"{label:<18} {len(data):>5}  {operation:<12} {mine:>11,.0f} {'-':>11} {'-':>11}")
            else:
                print(f"{label:<18} {len(data):>5}  {operation:<12} {mine:>11,.0f} {other:>11,.0f} {mine / other:>11.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Fixtures of the test bench tests: sample INVITEs (see ecrc_samples.py)."""

from __future__ import annotations

from datetime import datetime

import pytest
from ecrc_samples import ARRIVED_AT, SAMPLES

from b2bua.sip import Request, parse_message


@pytest.fixture
def invite():
    """invite(name, **options) -> (raw bytes, parsed Request)."""

    def make(name: str, **options) -> tuple[bytes, Request]:
        raw = SAMPLES[name](**options)
        request = parse_message(raw)
        assert isinstance(request, Request)
        return raw, request

    return make


@pytest.fixture
def arrived_at() -> datetime:
    return ARRIVED_AT

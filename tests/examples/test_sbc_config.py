"""Testing your SBC configuration with pytest (docs/testbench.md shows this file).

The e911-b2bua package registers a pytest plugin: `ecrc_factory`, `b2bua_from_config`,
`caller` and the `assert_*` helpers need no import or conftest.py.
"""

from pathlib import Path

import pytest
import pytest_asyncio

from b2bua.testbench.plugin import assert_location_received, assert_recorded

CONFIG = Path(__file__).with_name("branch-sbc.toml")

pytestmark = pytest.mark.asyncio  # not needed with asyncio_mode = "auto"


@pytest_asyncio.fixture
async def provider(ecrc_factory):
    """Two mock ECRCs in place of the provider's trunks."""
    return {"provider-east": await ecrc_factory("east"), "provider-west": await ecrc_factory("west")}


async def test_911_from_lync_reaches_the_first_ecrc_with_its_location(b2bua_from_config, provider, caller):
    sbc = await b2bua_from_config(CONFIG, trunks=provider)

    outcome = await caller.call(sbc.address("mediation"), to="911", style="lync")

    assert outcome.ok, outcome.line()
    record = await sbc.record_of(outcome)
    assert_location_received(record, outcome)  # the PIDF-LO arrived byte for byte
    assert_recorded(record, outcome, ecrc="east", verdict="location_by_value_valid",
                    disposition="routable_by_location", errors=False)


async def test_a_503_from_the_first_ecrc_fails_over_to_the_second(b2bua_from_config, provider, caller):
    sbc = await b2bua_from_config(CONFIG, trunks=provider)
    provider["provider-east"].set_answer("503")

    outcome = await caller.call(sbc.address("mediation"), to="911")

    assert outcome.ok, outcome.line()  # the caller never sees the 503
    assert_recorded(await sbc.record_of(outcome), outcome, ecrc="west", location="byte-exact")


async def test_933_is_read_back(b2bua_from_config, provider, caller):
    sbc = await b2bua_from_config(CONFIG, trunks=provider)

    outcome = await caller.call(sbc.address("mediation"), to="933", caller="+14255550100")

    assert_recorded(await sbc.record_of(outcome), outcome, is_test=True,
                    readback_contains=["+14255550100", "3910 163rd Ave NE"])

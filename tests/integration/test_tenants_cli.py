"""`scopix tenants`: an operator lists tenants with their standing, moves one to another tier and adds prepaid
credits, and the API follows at once."""

from __future__ import annotations

import argparse
import io

import pytest

from tests.support.callers import Caller, new_caller
from tests.support.quotas import set_used

pytestmark = pytest.mark.integration


async def _tenants_command(*argv: str) -> str:
    """`scopix tenants ...`, parsed and run as the command line does, against the test database."""
    from api.cli import tenants

    parser = argparse.ArgumentParser(prog="scopix")
    tenants.add_commands(parser.add_subparsers(dest="command", required=True), lambda _: None)
    out = io.StringIO()
    await tenants.run(parser.parse_args(["tenants", *argv]), out)
    return out.getvalue()


def _row(output: str, caller: Caller) -> dict[str, str]:
    header, *lines = output.splitlines()
    [line] = [line for line in lines if line.split("\t")[0] == caller.name]
    return dict(zip(header.split("\t"), line.split("\t"), strict=True))


async def test_set_tier_and_add_credits_change_what_the_tenant_may_upload(client, database):
    caller = await new_caller("free")
    await set_used(caller, 100)
    shown = _row(await _tenants_command("show", caller.name), caller)
    assert shown == {
        "tenant": caller.name,
        "tier": "free",
        "monthly_limit": "100",
        "current_usage": "100",
        "prepaid_credits": "0",
        "available": "0",
        "max_batch_size": "10",
        "max_concurrent_uploads": "2",
    }
    check = {"file_count": 5}
    assert not (await client.get("/api/v2/files/quota-check", headers=caller.headers, params=check)).json()[
        "can_proceed"
    ]

    assert "now has 500 prepaid credits" in await _tenants_command("add-credits", caller.name, "500")
    body = (await client.get("/api/v2/files/quota-check", headers=caller.headers, params=check)).json()
    assert body["can_proceed"] and body["prepaid_credits"] == 500 and body["available"] == 500

    assert "professional tier" in await _tenants_command("set-tier", caller.name, "professional")
    listed = _row(await _tenants_command("list"), caller)
    assert (listed["tier"], listed["monthly_limit"], listed["available"]) == ("professional", "10000", "10400")
    body = (await client.get("/api/v2/files/quota-check", headers=caller.headers, params=check)).json()
    assert (body["max_batch_size"], body["max_concurrent_uploads"]) == (100, 10)

    assert "now has 0 prepaid credits" in await _tenants_command("add-credits", caller.name, "-500")


async def test_refusals_name_the_problem(database):
    from store.errors import InvalidInput, NotFound

    caller = await new_caller("free")
    with pytest.raises(NotFound):
        await _tenants_command("set-tier", "no-such-tenant", "starter")
    with pytest.raises(NotFound):
        await _tenants_command("add-credits", "no-such-tenant", "5")
    with pytest.raises(NotFound):
        await _tenants_command("show", "no-such-tenant")
    with pytest.raises(InvalidInput, match="fewer than 0"):
        await _tenants_command("add-credits", caller.name, "-1")
    with pytest.raises(SystemExit):
        await _tenants_command("set-tier", caller.name, "platinum")

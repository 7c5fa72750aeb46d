"""API keys record their last use (to the minute), may expire, and `scopix keys` lists them without secrets."""

from __future__ import annotations

import argparse
import io
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.callers import Caller

pytestmark = pytest.mark.integration


async def _key_row(caller: Caller) -> dict:
    from store.tables import ApiKey

    [row] = await ApiKey.select().where(ApiKey.tenant == caller.tenant_id)
    return row


async def _set(caller: Caller, **values: object) -> None:
    from store.tables import ApiKey

    await ApiKey.update(values).where(ApiKey.tenant == caller.tenant_id)


async def _keys_command(*argv: str) -> str:
    """`scopix keys ...`, parsed and run as the command line does, against the test database."""
    from api.cli import keys

    parser = argparse.ArgumentParser(prog="scopix")
    keys.add_commands(parser.add_subparsers(dest="command", required=True), lambda _: None)
    out = io.StringIO()
    await keys.run(parser.parse_args(["keys", *argv]), out)
    return out.getvalue()


async def test_last_use_is_recorded_at_most_once_a_minute(client, alice):
    assert (await _key_row(alice))["last_used_at"] is None
    assert (await client.get("/api/v2/files", headers=alice.headers)).status_code == 200
    first = (await _key_row(alice))["last_used_at"]
    assert first is not None and datetime.now(UTC) - first < timedelta(seconds=30)
    assert (await client.get("/api/v2/files", headers=alice.headers)).status_code == 200
    assert (await _key_row(alice))["last_used_at"] == first  # no write within the minute
    await _set(alice, last_used_at=first - timedelta(minutes=2))
    assert (await client.get("/api/v2/files", headers=alice.headers)).status_code == 200
    assert (await _key_row(alice))["last_used_at"] > first


async def test_an_expired_key_is_401(client, alice):
    assert (await client.get("/api/v2/files", headers=alice.headers)).status_code == 200
    await _set(alice, expires_at=datetime.now(UTC) + timedelta(minutes=5))
    assert (await client.get("/api/v2/files", headers=alice.headers)).status_code == 200
    await _set(alice, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    response = await client.get("/api/v2/files", headers=alice.headers)
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"


async def test_keys_create_expires_in_and_keys_list_shows_no_secret(client, database):
    from store.tables import ApiKey

    tenant = f"acme-{datetime.now(UTC).timestamp()}"
    lasting = (await _keys_command("create", "--tenant", tenant)).splitlines()[-1]
    expiring = (await _keys_command("create", "--tenant", tenant, "--expires-in", "90d")).splitlines()[-1]
    assert (await client.get("/api/v2/files", headers={"Authorization": f"Bearer {expiring}"})).status_code == 200

    header, *lines = (await _keys_command("list", "--tenant", tenant)).splitlines()
    assert header.split("\t") == ["id", "prefix", "created", "last_used", "expires", "revoked"]
    listed = {line.split("\t")[1]: line.split("\t") for line in lines}
    assert set(listed) == {lasting.split("_")[1], expiring.split("_")[1]}
    _, _, created, last_used, expires, revoked = listed[expiring.split("_")[1]]
    in_90_days = datetime.fromisoformat(created) + timedelta(days=90)
    assert abs(datetime.fromisoformat(expires) - in_90_days) < timedelta(seconds=2)
    assert last_used != "-" and revoked == "-"
    assert listed[lasting.split("_")[1]][3:] == ["-", "-", "-"]  # never used, never expires, not revoked

    output = await _keys_command("list", "--tenant", tenant)
    hashes = await ApiKey.select(ApiKey.key_hash).where(ApiKey.prefix.is_in(list(listed)))
    for secret in (lasting, expiring, *(row["key_hash"] for row in hashes)):
        assert secret.split("_")[-1] not in output


@pytest.mark.parametrize("given", ["90", "0d", "-5d", "90x", "9999999d"])
async def test_bad_expiry_durations_are_refused(given):
    from api.cli.keys import duration

    with pytest.raises(argparse.ArgumentTypeError):
        duration(given)


async def test_listing_an_unknown_tenant_says_so(database):
    from store.errors import NotFound

    with pytest.raises(NotFound):
        await _keys_command("list", "--tenant", "no-such-tenant-anywhere")

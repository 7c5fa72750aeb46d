"""`scopix keys`: create a key (optionally expiring), revoke one, list a tenant's keys. A listing shows what
identifies and dates a key, never its secret or hash."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TextIO

from store.tenants import TIERS, create_key, ensure_tenant, list_keys, revoke_key

_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"^([1-9][0-9]{0,5})([mhdw])$")


def duration(text: str) -> timedelta:
    """`90d`, `12h`, `30m`, `2w`: a whole number and a unit."""
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90d, 12h, 30m or 2w")
    delta = timedelta(**{_UNITS[match[2]]: int(match[1])})
    if delta > timedelta(days=3650):
        raise argparse.ArgumentTypeError(f"{text!r} is more than ten years; omit --expires-in for a key that lasts")
    return delta


def add_commands(
    commands: argparse._SubParsersAction, with_data_dir: Callable[[argparse.ArgumentParser], None]
) -> None:
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create a tenant if needed and print a new API key")
    create.add_argument("--tenant", required=True)
    create.add_argument("--tier", choices=TIERS, default=None)
    create.add_argument(
        "--expires-in", type=duration, default=None, help="e.g. 90d, 12h, 2w (default: valid until revoked)"
    )
    with_data_dir(create)
    revoke = keys.add_parser("revoke", help="revoke the key with this prefix")
    revoke.add_argument("prefix")
    with_data_dir(revoke)
    listing = keys.add_parser("list", help="a tenant's keys: id, prefix, created, last used, expires, revoked")
    listing.add_argument("--tenant", required=True)
    with_data_dir(listing)


async def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> None:
    """Errors are store.errors.DomainError, which the command line prints."""
    if args.keys_command == "create":
        tenant = await ensure_tenant(args.tenant, args.tier)
        key = await create_key(tenant, args.expires_in)
        print(f"tenant {tenant.name} ({tenant.tier}); the key is shown once:", file=out)
        print(key, file=out)
    elif args.keys_command == "revoke":
        await revoke_key(args.prefix)
        print(f"revoked {args.prefix}", file=out)
    else:
        print("id\tprefix\tcreated\tlast_used\texpires\trevoked", file=out)
        for info in await list_keys(args.tenant):
            dates = (info.created_at, info.last_used_at, info.expires_at, info.revoked_at)
            print("\t".join([str(info.id), info.prefix, *map(_when, dates)]), file=out)


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.isoformat(timespec="seconds")

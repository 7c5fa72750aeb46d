"""`scopix tenants`: what each tenant may use and has used this month (store/quotas.py), and an operator's changes
to it: another tier, prepaid credits added (or, negative, taken back)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TextIO

from store.quotas import UNLIMITED, Usage, add_credits, usages
from store.tenants import TIERS, set_tier

_HEADER = "\t".join(
    (
        "tenant",
        "tier",
        "monthly_limit",
        "current_usage",
        "prepaid_credits",
        "available",
        "max_batch_size",
        "max_concurrent_uploads",
    )
)


def add_commands(
    commands: argparse._SubParsersAction, with_data_dir: Callable[[argparse.ArgumentParser], None]
) -> None:
    tenants = commands.add_parser("tenants", help="tenants' tiers, quotas and prepaid credits")
    actions = tenants.add_subparsers(dest="tenants_command", required=True)
    listing = actions.add_parser("list", help="every tenant: tier, this month's usage, credits, limits")
    with_data_dir(listing)
    show = actions.add_parser("show", help="one tenant: tier, this month's usage, credits, limits")
    show.add_argument("tenant")
    with_data_dir(show)
    tier = actions.add_parser("set-tier", help="move a tenant to another tier")
    tier.add_argument("tenant")
    tier.add_argument("tier", choices=TIERS)
    with_data_dir(tier)
    credits = actions.add_parser("add-credits", help="add prepaid credits (negative: take unused ones back)")
    credits.add_argument("tenant")
    credits.add_argument("credits", type=int)
    with_data_dir(credits)


async def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> None:
    """Errors are store.errors.DomainError, which the command line prints."""
    if args.tenants_command == "set-tier":
        tenant = await set_tier(args.tenant, args.tier)
        print(f"tenant {tenant.name} is now on the {tenant.tier} tier", file=out)
    elif args.tenants_command == "add-credits":
        balance = await add_credits(args.tenant, args.credits)
        print(f"tenant {args.tenant.strip()} now has {balance} prepaid credits", file=out)
    else:
        print(_HEADER, file=out)
        for name, usage in await usages(args.tenant if args.tenants_command == "show" else None):
            print(_line(name, usage), file=out)


def _line(name: str, usage: Usage) -> str:
    limits = usage.limits
    available = "unlimited" if usage.available == UNLIMITED else str(usage.available)
    monthly = "unlimited" if limits.monthly_files == UNLIMITED else str(limits.monthly_files)
    values = (usage.current_usage, usage.prepaid_credits)
    tail = (available, limits.max_batch_size, limits.max_concurrent_uploads)
    return "\t".join(map(str, (name, usage.tier, monthly, *values, *tail)))

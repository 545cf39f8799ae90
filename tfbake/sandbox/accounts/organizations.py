"""Which organization and organizational units an account belongs to, from moto's
Organizations API, as the launch permissions that would reach it."""

from __future__ import annotations

from typing import Any

PUBLIC = {"Group": "all"}


def permissions_reaching(account_id: str) -> list[dict[str, str]]:
    """Every launch permission entry that lets `account_id` use an AMI: its own id, public, its
    organization's ARN, and the ARN of each OU it sits in, from its parent up to the root."""
    reaching = [{"UserId": account_id}, PUBLIC]
    backend = _organization_backend(account_id)
    if backend is None or backend.org is None:
        return reaching
    reaching.append({"OrganizationArn": backend.org.arn})
    account = next((a for a in backend.accounts if a.id == account_id), None)
    units = {unit.id: unit for unit in backend.ou}
    parent_id = account.parent_id if account is not None else None
    while parent_id in units:
        unit = units[parent_id]
        # The root is not an OU: sharing with the organization is how to reach all of it.
        if unit.type == "ORGANIZATIONAL_UNIT":
            reaching.append({"OrganizationalUnitArn": unit.arn})
        parent_id = getattr(unit, "parent_id", None)
    return reaching


def _organization_backend(account_id: str) -> Any:
    from moto.organizations.models import organizations_backends

    master = organizations_backends.master_accounts.get(account_id)
    if master is not None:
        master_id, partition = master
        return organizations_backends[master_id][partition]
    # The management account is no member of master_accounts; its own backend holds the org.
    if account_id in organizations_backends:
        return organizations_backends[account_id]["aws"]
    return None

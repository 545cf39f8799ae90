"""Forget every account but the sandbox's own before a reset.

moto's reset re-creates the backends of every account it holds before it drops them, which
costs most for the accounts tests reach by AssumeRole (each IAM backend loads AWS's managed
policies again). Dropping them first keeps a reset as quick as with one account; moto's
Organizations also remembers members outside its backends, which go too.
"""

from __future__ import annotations

from typing import Any


def forget_other_accounts(keep: str) -> None:
    from moto.core.base_backend import BackendDict
    from moto.organizations.models import organizations_backends

    instances: list[Any] = BackendDict._instances  # type: ignore[misc]
    for backends in list(instances):
        for account_id in [account for account in backends if account != keep]:
            del backends[account_id]
    organizations_backends.master_accounts.clear()

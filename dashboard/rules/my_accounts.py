""""My accounts" (issue 10): which customers a list shows a user by default.

A customer's account owner is the name in its Stigg metadata (the key is
settings.ACCOUNT_OWNER_METADATA_KEY; the read model keeps it whitespace-stripped:
readmodel.documents.account_owner). A user owns the customers whose owner is exactly their
profile's ``account_owner``, stripped too. The match keeps case: the near-limit owner
filter, the alerts' ``account_owner`` and the read model's per-owner indexes all hold the
name as Stigg's metadata spells it, so one spelling is one person everywhere (a profile
spelled otherwise than the metadata finds nothing, and the lists say so).

Every list — customers, near-limit, expiring promotions, alerts — reads the same query
name, ``mine``: "1" only my accounts, "0" every account, absent the user's default (on
when they own accounts). A user with no owner name has no "My accounts" and sees every
account. The links a list builds carry the value in effect, so paging, sorting, polling
and the CSV keep it.

Pure: no I/O; the views pass the query value and the profile's owner name."""
from __future__ import annotations

from dataclasses import dataclass

MINE = "mine"  # the query name, the same on every list
ON, OFF = "1", "0"


@dataclass(frozen=True)
class MyAccounts:
    """What a list shows: ``owner`` the user's owner name ("" none), ``on`` whether only
    their accounts are listed, ``problem`` what in the query could not be used, in words."""

    owner: str
    on: bool
    problem: str | None = None

    @property
    def available(self) -> bool:
        """The user owns accounts (has an owner name), so the list offers the switch."""
        return bool(self.owner)

    @property
    def owner_filter(self) -> str | None:
        """The owner to filter the list by, None for every account."""
        return self.owner if self.on else None

    def params(self) -> dict[str, str]:
        """The query the list's own links carry (nothing for a user without accounts)."""
        return {MINE: ON if self.on else OFF} if self.owner else {}

    def switched(self) -> dict[str, str]:
        """The query of the one-click switch: to every account, or back to mine."""
        return {MINE: OFF if self.on else ON}


def owner_name(raw: str | None) -> str:
    """A profile's owner name as it is matched: whitespace stripped, case kept."""
    return (raw or "").strip()


def my_accounts(value: str | None, owner: str | None, chosen_owner: str | None = None) -> MyAccounts:
    """What a list shows for the ``mine`` query ``value`` and the user's ``owner`` name.

    ``chosen_owner``: an account owner the list's own owner filter names (near-limit). A
    link with one (someone else's accounts) is followed as written: the default gives way
    to it; an explicit ``mine=1`` does not (the owner filter is then left out, and said)."""
    owner = owner_name(owner)
    problem = None
    if value not in (None, "", ON, OFF):
        problem = "“mine” is 1 (only my accounts) or 0 (every account); showing the default."
        value = None
    if not owner:
        if value == ON:
            problem = ("“My accounts” needs your account owner name on your profile (an administrator sets it "
                       "on your user page); showing every account.")
        return MyAccounts("", False, problem)
    if value in (None, ""):
        on = not chosen_owner or chosen_owner == owner
    else:
        on = value == ON
        if on and chosen_owner and chosen_owner != owner:
            problem = (f"The account owner filter “{chosen_owner}” is left out while My accounts is on; "
                       "show every account to use it.")
    return MyAccounts(owner, on, problem)

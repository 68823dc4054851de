"""The "My accounts" rule (dashboard/rules/my_accounts.py): which accounts a list shows, from
the `mine` query and the user's owner name. Pure: no database, no Redis."""
from __future__ import annotations

import pytest

from dashboard.rules.my_accounts import MyAccounts, my_accounts, owner_name


def test_it_is_on_by_default_for_a_user_who_owns_accounts():
    mine = my_accounts(None, "Maria Garcia")
    assert mine == MyAccounts("Maria Garcia", True) and mine.available
    assert mine.owner_filter == "Maria Garcia"
    assert mine.params() == {"mine": "1"} and mine.switched() == {"mine": "0"}
    assert my_accounts("", "Maria Garcia").on


def test_mine_0_shows_every_account_and_mine_1_only_theirs():
    off = my_accounts("0", "Maria Garcia")
    assert not off.on and off.owner_filter is None and off.available
    assert off.params() == {"mine": "0"} and off.switched() == {"mine": "1"}
    assert my_accounts("1", "Maria Garcia").owner_filter == "Maria Garcia"


def test_a_user_without_an_owner_name_has_no_my_accounts():
    for value in (None, "", "0"):
        mine = my_accounts(value, "")
        assert mine == MyAccounts("", False) and not mine.available and mine.params() == {}
    asked = my_accounts("1", "   ")
    assert not asked.on and asked.owner_filter is None and "account owner name on your profile" in asked.problem


def test_the_owner_name_is_stripped_and_keeps_its_case():
    assert owner_name("  Maria Garcia\t") == "Maria Garcia" and owner_name(None) == ""
    assert my_accounts(None, " Maria Garcia ").owner_filter == "Maria Garcia"
    assert my_accounts(None, "maria garcia").owner_filter == "maria garcia"


@pytest.mark.parametrize("value", ["yes", "2", "true", "on", "1 "])
def test_a_value_it_cannot_use_is_said_and_the_default_shown(value):
    mine = my_accounts(value, "Maria Garcia")
    assert mine.on and "“mine” is 1" in mine.problem
    assert not my_accounts(value, "").on


def test_a_chosen_owner_wins_over_the_default_but_not_over_an_explicit_mine_1():
    assert my_accounts(None, "Maria Garcia", chosen_owner="Wei Chen") == MyAccounts("Maria Garcia", False)
    assert my_accounts(None, "Maria Garcia", chosen_owner="Maria Garcia").on
    insisted = my_accounts("1", "Maria Garcia", chosen_owner="Wei Chen")
    assert insisted.on and insisted.owner_filter == "Maria Garcia" and "“Wei Chen” is left out" in insisted.problem
    assert my_accounts("0", "Maria Garcia", chosen_owner="Wei Chen") == MyAccounts("Maria Garcia", False)

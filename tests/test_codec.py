"""The one codec between the client's typed values and the JSON the read model stores."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from dashboard.stigg import (
    AddonQuantity, Customer, Entitlement, GovernanceNode, Promotion, Subscription,
)
from dashboard.codec import dump, load, load_all

from .test_read_model import FEATURES, PACKAGES, T0

VALUES = [
    *FEATURES.values(),
    *PACKAGES.values(),
    Customer("c:1/é", "Ünïcødé", None, T0, T0 + timedelta(seconds=1), None, {"accountOwner": "ada"}),
    Subscription("s1", "c1", "pro", "ACTIVE", "site-1", T0, None, T0, None, T0 + timedelta(days=30), "PAID",
                 (AddonQuantity("extra-seats", 2), AddonQuantity("x", 1))),
    # created_at differs from start_date: a hand-kept mapping once filled one from the other
    Promotion("p1", "api", "Active", "1 month", T0, None, 5000.5, False, True, ("a", "b"), "MONTH",
              T0 - timedelta(days=3)),
    Entitlement("api", "API", "NUMBER", True, None, 12, 100, False, "MONTH", T0, T0, T0, None),
    GovernanceNode("team", "team", None, None, None, "credits", ("a", "b"), "P1M", None, 3.5, None, T0, None),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_it_loads_back_exactly_what_it_dumped_through_json(value):
    stored = json.loads(json.dumps(dump(value)))
    assert load(type(value), stored) == value


def test_it_loads_lists_and_keeps_missing_optional_fields_at_their_defaults():
    subs = [v for v in VALUES if isinstance(v, Subscription)] * 2
    assert load_all(Subscription, json.loads(json.dumps(dump(subs)))) == subs
    stored = dump(FEATURES["region"])
    del stored["enum_options"]
    assert load(type(FEATURES["region"]), stored).enum_options == ()

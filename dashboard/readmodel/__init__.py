"""The Redis read model: the only code that touches Redis keys.

``keys`` spells every key; ``customers`` holds the documents and the list index;
``rankings`` the fleet-wide sorted sets; ``syncstate`` freshness, the hot tier, status,
locks and claims; ``catalog`` and ``history`` one value each; ``model`` puts them
together as ``ReadModel``. ``documents`` and ``values`` are the typed values stored and
returned. Nothing here knows Stigg's wire format: sync shapes Stigg's answers first."""
from .documents import (
    CustomerDocument, EntitlementDoc, GovernanceNodeDoc, PromotionDoc, SubscriptionDoc, UsageHistoryDoc,
    UsageSeriesDoc,
)
from .keys import LAYOUT_VERSION
from .model import ReadModel
from .values import (
    BudgetRank, Catalog, CustomerPage, CustomerRow, EntitlementRank, HistogramBin, SyncStatus, ThresholdCounts,
    iso, parse_time,
)

__all__ = [
    "LAYOUT_VERSION", "BudgetRank", "Catalog", "CustomerDocument", "CustomerPage", "CustomerRow",
    "EntitlementDoc", "EntitlementRank", "GovernanceNodeDoc", "HistogramBin", "PromotionDoc", "ReadModel",
    "SubscriptionDoc", "SyncStatus", "ThresholdCounts", "UsageHistoryDoc", "UsageSeriesDoc", "iso", "parse_time",
]

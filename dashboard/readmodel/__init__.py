"""The Redis read model: the only code that touches Redis keys.

``keys`` spells every key; ``customers`` holds the documents and the list index;
``governance`` each customer's hierarchy (nodes and a children index) and the fleet's
budget rankings; ``rankings`` the entitlement rankings, counts and histograms;
``nearlimit`` the near-limit facets and reads over those rankings (``nearlimit_rows`` the
rows they read back, ``nearlimit_rare`` the rows of rare capabilities and entity types,
``nearlimit_bounds`` where each one's rows begin in the rankings; ``snapshots`` their CSV
as a worker built it); ``promotions`` the
fleet's promotions by end date; ``syncstate`` freshness, the hot tier, status, locks and claims; ``catalog`` and ``history`` one value each; ``model`` puts them
together as ``ReadModel``. ``documents`` and ``values`` are the typed values stored and
returned; ``packed`` the stored form of the whole documents (customer, usage history).
Nothing here knows Stigg's wire format: sync shapes Stigg's answers first."""
from .documents import (
    CustomerDocument, EntitlementDoc, PromotionDoc, SubscriptionDoc, UsageHistoryDoc, UsageSeriesDoc,
)
from .governance import (
    BlockingRef, BudgetDoc, GovernanceSummary, GovernanceWrite, IndexNode, NodeDoc, empty_governance,
)
from .keys import LAYOUT_VERSION
from .model import ReadModel
from .nearlimit import Facets, NearLimitQuery
from .nearlimit_rows import NearLimitPage, NearLimitRow
from .promotions import ExpiringPage
from .snapshots import CsvSnapshot
from .values import (
    BudgetRank, Catalog, CustomerPage, CustomerRow, EntitlementRank, HistogramBin, SyncStatus, ThresholdCounts,
    iso, parse_time,
)

__all__ = [
    "LAYOUT_VERSION", "BudgetRank", "CsvSnapshot", "ExpiringPage", "Catalog", "CustomerDocument", "CustomerPage", "CustomerRow", "Facets",
    "BlockingRef", "BudgetDoc", "EntitlementDoc", "EntitlementRank", "GovernanceSummary", "GovernanceWrite",
    "HistogramBin", "IndexNode", "NearLimitPage", "NearLimitQuery", "NearLimitRow", "NodeDoc", "empty_governance",
    "PromotionDoc", "ReadModel",
    "SubscriptionDoc", "SyncStatus", "ThresholdCounts", "UsageHistoryDoc", "UsageSeriesDoc", "iso", "parse_time",
]

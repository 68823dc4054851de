"""The dashboard's pages and endpoints, one module per page family. A page view reads
only the Redis read model, never Stigg; it renders the whole page, or one named partial
for htmx."""
from .customer import customer, refresh_customer
from .customers import customers
from .health import healthz
from .nearlimit import near_limit, near_limit_csv
from .overview import overview
from .webhooks import stigg_webhook

__all__ = ["customer", "customers", "healthz", "near_limit", "near_limit_csv", "overview", "refresh_customer",
           "stigg_webhook"]

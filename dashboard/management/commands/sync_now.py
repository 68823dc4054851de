"""python manage.py sync_now [CUSTOMER_ID ...] — queue a full sweep, or refreshes of the
customers named, for the Celery workers."""
from django.core.management.base import BaseCommand

from dashboard import tasks


class Command(BaseCommand):
    help = "Queue a full sweep (no arguments) or an immediate refresh of the customers named."

    def add_arguments(self, parser):
        parser.add_argument("customer_ids", nargs="*")

    def handle(self, *args, customer_ids: list[str], **opts):
        if not customer_ids:
            tasks.sweep_customers.delay()
            self.stdout.write("Queued a full sweep")
            return
        for customer_id in customer_ids:
            tasks.refresh_customer_now.delay(customer_id, "manual")
        self.stdout.write(f"Queued {len(customer_ids)} refreshes")

"""The audit log page's indexes: it pages by keyset in the order (-at, -id), filtered by
customer, user or action (dates are a range on ``at`` within any of them), so each index
is (filter, at, id) and a page reads ~51 index entries whatever its depth. Unfiltered, the
index on ``at`` of 0001 serves: SQLite's indexes end with the rowid (our id), and
PostgreSQL sorts the few rows of one ``at`` (an Incremental Sort) rather than read a
larger (at, id) index, which it left unused when there was one.

And one for an action with a customer, one for an action with a user: without them SQLite,
which keeps no statistics, took the action's index and walked every row of that action to
find a customer's few (12 ms at 100,000 rows), or a mistyped user's none (29 ms).

Only AddIndex: no table rebuild on SQLite, so the append-only triggers of 0002 stay. The
index on ``customer_id`` alone (0001) is left, though (customer_id, at, id) does its work:
dropping it is an AlterField, which SQLite does by rebuilding the table."""
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0005_grant_requests")]

    operations = [
        migrations.AddIndex(model_name="auditentry",
                            index=models.Index(fields=["customer_id", "at", "id"], name="audit_customer_at_idx")),
        migrations.AddIndex(model_name="auditentry",
                            index=models.Index(fields=["customer_id", "action", "at", "id"],
                                               name="audit_customer_action_idx")),
        migrations.AddIndex(model_name="auditentry",
                            index=models.Index(fields=["username", "at", "id"], name="audit_user_at_idx")),
        migrations.AddIndex(model_name="auditentry",
                            index=models.Index(fields=["username", "action", "at", "id"],
                                               name="audit_user_action_idx")),
        migrations.AddIndex(model_name="auditentry",
                            index=models.Index(fields=["action", "at", "id"], name="audit_action_at_idx")),
    ]

"""The audit log page's indexes: it pages by keyset in the order (-at, -id), unfiltered or
filtered by customer, user or action (dates are a range on ``at`` within any of them), so
each index is (filter, at, id) and a page reads 51 index entries whatever its depth.

Only AddIndex: no table rebuild on SQLite, so the append-only triggers of 0002 stay.
(The single-column indexes on ``at`` and ``customer_id`` from 0001 are left: dropping them
is an AlterField, which SQLite does by rebuilding the table.)"""
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0004_promotion_actions")]

    operations = [
        migrations.AddIndex(model_name="auditentry",
                            index=models.Index(fields=["at", "id"], name="audit_at_id_idx")),
        migrations.AddIndex(model_name="auditentry",
                            index=models.Index(fields=["customer_id", "at", "id"], name="audit_customer_at_idx")),
        migrations.AddIndex(model_name="auditentry",
                            index=models.Index(fields=["username", "at", "id"], name="audit_user_at_idx")),
        migrations.AddIndex(model_name="auditentry",
                            index=models.Index(fields=["action", "at", "id"], name="audit_action_at_idx")),
    ]

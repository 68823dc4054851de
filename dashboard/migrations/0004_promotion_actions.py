"""Promotions join the audit log: three more actions, and the permission to grant, extend
and revoke them, given to "Customer success" (Viewers stay read-only)."""
from django.db import migrations, models

CUSTOMER_SUCCESS = "Customer success"
GRANT_PROMOTION = ("grant_promotion", "Can grant, extend and revoke promotions")


def give_permission(apps, schema_editor) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    audit, _ = ContentType.objects.get_or_create(app_label="dashboard", model="auditentry")
    perm, _ = Permission.objects.get_or_create(content_type=audit, codename=GRANT_PROMOTION[0],
                                               defaults={"name": GRANT_PROMOTION[1]})
    group, _ = Group.objects.get_or_create(name=CUSTOMER_SUCCESS)
    group.permissions.add(perm)


def take_permission(apps, schema_editor) -> None:
    apps.get_model("auth", "Permission").objects.filter(codename=GRANT_PROMOTION[0]).delete()


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0003_roles")]

    operations = [
        migrations.AlterModelOptions(
            name="auditentry",
            options={
                "default_permissions": ("view",),
                "ordering": ("-at", "-id"),
                "permissions": [("change_budget", "Can change governance budgets"),
                                ("grant_promotion", "Can grant, extend and revoke promotions")],
                "verbose_name": "audit entry",
                "verbose_name_plural": "audit log",
            },
        ),
        migrations.AlterField(
            model_name="auditentry",
            name="action",
            field=models.CharField(choices=[("budget.change", "Budget changed"), ("budget.add", "Budget added"),
                                            ("promotion.grant", "Promotion granted"),
                                            ("promotion.extend", "Promotion extended"),
                                            ("promotion.revoke", "Promotion revoked")], max_length=40),
        ),
        migrations.RunPython(give_permission, take_permission),
    ]

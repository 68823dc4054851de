"""The two roles: "Viewers" read every page; "Customer success" may also change budgets
(and, later, grant and revoke promotions). Both may read the audit log.

Permissions are made by Django after all migrations have run (post_migrate), so the ones
the groups need are made here; post_migrate then finds them and leaves them be."""
from django.db import migrations

VIEWERS = "Viewers"
CUSTOMER_SUCCESS = "Customer success"
PERMISSIONS = {"change_budget": "Can change governance budgets", "view_auditentry": "Can view audit entry"}
ROLES = {VIEWERS: ("view_auditentry",), CUSTOMER_SUCCESS: ("view_auditentry", "change_budget")}


def create_roles(apps, schema_editor) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    audit, _ = ContentType.objects.get_or_create(app_label="dashboard", model="auditentry")
    perms = {code: Permission.objects.get_or_create(content_type=audit, codename=code, defaults={"name": name})[0]
             for code, name in PERMISSIONS.items()}
    for name, codes in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*(perms[c] for c in codes))


def remove_roles(apps, schema_editor) -> None:
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("dashboard", "0002_audit_log_append_only"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]

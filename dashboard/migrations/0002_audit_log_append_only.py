"""The audit log is append-only in the database too, whatever code or person talks to it:
triggers refuse UPDATE and DELETE of its rows (and, on PostgreSQL, TRUNCATE).

Only SQLite and PostgreSQL, the two databases DATABASE_URL supports, get triggers; on any
other the model's own guard (dashboard/models.py) is the only one.

Mind on SQLite: a later migration that alters this table makes Django rebuild it (new
table, copy, drop, rename), and the triggers go with the old table. Such a migration must
run ``append_only`` again."""
from django.db import migrations

TABLE = "dashboard_auditentry"
MESSAGE = "the audit log is append-only"

SQLITE = [
    f"CREATE TRIGGER {TABLE}_no_update BEFORE UPDATE ON {TABLE} BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
    f"CREATE TRIGGER {TABLE}_no_delete BEFORE DELETE ON {TABLE} BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
]
SQLITE_UNDO = [f"DROP TRIGGER IF EXISTS {TABLE}_no_update", f"DROP TRIGGER IF EXISTS {TABLE}_no_delete"]

POSTGRESQL = [
    f"""CREATE OR REPLACE FUNCTION {TABLE}_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'restrict_violation'; END $$""",
    f"CREATE TRIGGER {TABLE}_no_change BEFORE UPDATE OR DELETE ON {TABLE} "
    f"FOR EACH ROW EXECUTE FUNCTION {TABLE}_refuse()",
    f"CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE} "
    f"FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_refuse()",
]
POSTGRESQL_UNDO = [f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}",
                   f"DROP TRIGGER IF EXISTS {TABLE}_no_change ON {TABLE}",
                   f"DROP FUNCTION IF EXISTS {TABLE}_refuse()"]


def _run(statements: dict[str, list[str]]):
    def run(apps, schema_editor) -> None:
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)
    return run


append_only = _run({"sqlite": SQLITE, "postgresql": POSTGRESQL})
allow_changes = _run({"sqlite": SQLITE_UNDO, "postgresql": POSTGRESQL_UNDO})


class Migration(migrations.Migration):
    dependencies = [("dashboard", "0001_audit_log")]

    operations = [migrations.RunPython(append_only, allow_changes, elidable=False)]

"""On PostgreSQL, the database itself refuses UPDATE and DELETE on ledger entries.

Why a trigger and not only the model's guards: raw SQL, a shell, a future bulk job or another
client must not be able to rewrite money either. TRUNCATE (used by test teardown) is not a row
operation and stays possible for the database owner. SQLite, the embedded development database,
relies on the model and queryset guards.
"""
from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION wallet_ledgerentry_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are append-only (% refused on entry %)', TG_OP, OLD.id
        USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER wallet_ledgerentry_append_only
    BEFORE UPDATE OR DELETE ON wallet_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION wallet_ledgerentry_append_only();
"""

DROP = """
DROP TRIGGER IF EXISTS wallet_ledgerentry_append_only ON wallet_ledgerentry;
DROP FUNCTION IF EXISTS wallet_ledgerentry_append_only();
"""


def create_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE, params=None)


def drop_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("wallet", "0001_initial")]
    operations = [migrations.RunPython(create_trigger, drop_trigger)]

"""The benchmarks' scratch PostgreSQL databases: dropped and created afresh for each run, and only when
their name says they are for benchmarks, so a mistyped URL can never drop real data."""
import sys
from urllib.parse import urlsplit, urlunsplit


def recreate_database(url: str) -> None:
    """Drop (closing its connections) and create the database `url` names; it must contain 'bench'."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if "bench" not in name:
        sys.exit(f"refusing to drop {name!r}: the benchmark database's name must contain 'bench'")
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

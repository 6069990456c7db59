"""One SELECT for a row and the rows its foreign keys point to, with the statement built once per process.

Why: Django compiles a queryset's SQL on every call. For a select_related over four to six tables that
compilation costs more CPU than PostgreSQL spends answering the query (bench/profiles/: the device and
card reads of every counter request). The counter's hot reads have a fixed shape, so `JoinedSelect`
builds their statement once from the models' metadata and afterwards only binds parameters.

What comes back is what `Model.objects.select_related(*related).filter(...).first()` returns: a model
instance with the related instances cached on it, every value passed through the same database
converters the ORM applies (so SQLite's datetimes, decimals and booleans come back as on PostgreSQL).
Only forward foreign keys and one-to-one fields can be followed ("wallet__customer__user" is fine).

    DEVICE_BY_PREFIX = JoinedSelect(PosDevice, ("merchant", "store"), where="t0.key_prefix = %s")
    device = DEVICE_BY_PREFIX.first(prefix)

`where` is SQL over the aliases t0 (the model), t1, t2... (the relations, in the order given, each path's
steps numbered as they first appear). `extra` adds named scalar SQL expressions, set as attributes on the
returned instance; an expression may be a function of the connection, for SQL that differs by database.
`lock_own_row` appends FOR UPDATE OF t0 where the database has row locks.
"""
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connections, models


@dataclass
class _Node:
    model: type[models.Model]
    alias: str
    parent: int | None = None  # index of the node this one hangs from
    link: models.Field | None = None  # the parent's foreign key that leads here
    fields: list = field(default_factory=list)
    attnames: list = field(default_factory=list)
    pk_index: int = 0
    converters: list = field(default_factory=list)  # per field: [(converter, expression), ...]


@dataclass
class _Plan:
    sql: str
    nodes: list[_Node]
    extra_names: list[str]


class JoinedSelect:
    def __init__(self, model, related=(), *, where: str, extra: dict[str, str | Callable] | None = None,
                 lock_own_row: bool = False, using: str = "default"):
        self.model, self.related, self.where = model, tuple(related), where
        self.extra = dict(extra or {})
        self.lock_own_row, self.using = lock_own_row, using
        self._plans: dict[str, _Plan] = {}  # by database vendor: tests may switch databases

    def first(self, *params):
        """The first row matching `where` with `params`, or None."""
        connection = connections[self.using]
        plan = self._plans.get(connection.vendor)
        if plan is None:
            plan = self._plans[connection.vendor] = self._build(connection)
        with connection.cursor() as cursor:
            cursor.execute(plan.sql, params)
            row = cursor.fetchone()
        return None if row is None else self._hydrate(plan, row, connection)

    def _build(self, connection) -> _Plan:
        quote = connection.ops.quote_name
        nodes = [_Node(self.model, "t0")]
        by_path = {"": 0}
        joins = []
        for path in self.related:
            parent_path = ""
            for step in path.split("__"):
                here = f"{parent_path}__{step}" if parent_path else step
                if here not in by_path:
                    parent = nodes[by_path[parent_path]]
                    link = parent.model._meta.get_field(step)
                    if not (link.concrete and (link.many_to_one or link.one_to_one)):
                        raise ValueError(f"{parent.model.__name__}.{step} is not a forward foreign key")
                    node = _Node(link.related_model, f"t{len(nodes)}", by_path[parent_path], link)
                    outer = link.null or any(j.startswith("LEFT") and f" {parent.alias} " in j for j in joins)
                    joins.append(
                        f"{'LEFT OUTER' if outer else 'INNER'} JOIN {quote(node.model._meta.db_table)} {node.alias} "
                        f"ON {node.alias}.{quote(link.target_field.column)} = {parent.alias}.{quote(link.column)}"
                    )
                    by_path[here] = len(nodes)
                    nodes.append(node)
                parent_path = here
        columns = []
        for node in nodes:
            node.fields = list(node.model._meta.concrete_fields)
            node.attnames = [f.attname for f in node.fields]
            node.pk_index = node.fields.index(node.model._meta.pk)
            for model_field in node.fields:
                column = model_field.get_col(node.alias)
                node.converters.append([
                    (converter, column)
                    for converter in connection.ops.get_db_converters(column) + column.get_db_converters(connection)
                ])
                columns.append(f"{node.alias}.{quote(model_field.column)}")
        columns += [
            f"({expression(connection) if callable(expression) else expression})" for expression in self.extra.values()
        ]
        # Names come from the models' metadata, `where` and `extra` from our own code; values are parameters.
        sql = (
            f"SELECT {', '.join(columns)} FROM {quote(self.model._meta.db_table)} t0 "  # noqa: S608
            f"{' '.join(joins)} WHERE {self.where}"
        )
        if self.lock_own_row and connection.features.has_select_for_update:
            sql += " FOR UPDATE OF t0" if connection.features.has_select_for_update_of else " FOR UPDATE"
        return _Plan(sql=sql, nodes=nodes, extra_names=list(self.extra))

    def _hydrate(self, plan: _Plan, row, connection):
        instances, at = [], 0
        for node in plan.nodes:
            values = list(row[at:at + len(node.fields)])
            at += len(node.fields)
            for index, converters in enumerate(node.converters):
                for converter, expression in converters:
                    values[index] = converter(values[index], expression, connection)
            instance = None if values[node.pk_index] is None else node.model.from_db(
                connection.alias, node.attnames, values
            )
            instances.append(instance)
            if node.parent is not None and instances[node.parent] is not None:
                node.link.set_cached_value(instances[node.parent], instance)
                if node.link.one_to_one and instance is not None:
                    node.link.remote_field.set_cached_value(instance, instances[node.parent])
        base = instances[0]
        for name, value in zip(plan.extra_names, row[at:], strict=True):
            setattr(base, name, value)
        return base

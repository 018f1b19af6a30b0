"""List answers built from ``values_list()`` rows instead of model instances and DRF fields, byte for byte the same.

Why: a list page of 100 links made 500 model instances (the link, its two interfaces, their two switches) and ran
~10 DRF field objects per row; that was most of a list request's CPU. A :class:`ValuesPlan` is derived once per
serializer class from the serializer's own fields: each readable field becomes an ORM path (``site.name`` ->
``site__name``) plus, where the database value is not already what the field would answer, that field's own
``to_representation``. The queryset (filtered, ordered, paginated exactly as before) is then read with
``values_list()`` of those paths only.

Only what can be proven the same is derived; anything else (method fields without a declared equivalent, nested or
many-valued relations, a custom ``to_representation``, a path through a nullable relation whose field would be
omitted rather than null) makes :func:`plan_for` answer None, and the viewset serializes as before.
``tests/web/test_fastlist.py`` compares both outputs on every endpoint that has a plan.

A serializer declares the equivalent of a method field in ``values_fields``:
``{"a": (("a_interface__device__hostname", "a_interface__name"), lambda host, port: {...})}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model, QuerySet
from rest_framework import fields as drf
from rest_framework import relations, serializers
from rest_framework.fields import empty
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

from .pagination import Pagination

_INTEGERS = frozenset(
    {"AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField", "SmallIntegerField",
     "PositiveIntegerField", "PositiveSmallIntegerField", "PositiveBigIntegerField"}
)  # fmt: skip
_TEXTS = frozenset({"CharField", "TextField", "SlugField"})
# DRF field class -> database column types whose Python value the field answers unchanged (int(1) is 1, str("a") is
# "a", a choice answers its own value); no call per value for those.
_UNCHANGED: dict[type, frozenset[str]] = {
    drf.IntegerField: _INTEGERS,
    drf.BigIntegerField: _INTEGERS,
    drf.CharField: _TEXTS,
    drf.SlugField: _TEXTS,
    drf.ChoiceField: _TEXTS | _INTEGERS,
    drf.BooleanField: frozenset({"BooleanField"}),
}
# Fields whose to_representation is a function of the value alone (no instance, request or context): called per value.
_PURE = frozenset(
    {drf.FloatField, drf.DateTimeField, drf.DateField, drf.TimeField, drf.DurationField, drf.DecimalField,
     drf.JSONField, drf.IPAddressField, drf.UUIDField, drf.EmailField, drf.URLField, *_UNCHANGED}
)  # fmt: skip


@dataclass(frozen=True)
class Column:
    """One output field: where its inputs sit in a row, and how they become its value (None: unchanged)."""

    name: str
    indexes: tuple[int, ...]
    convert: Callable[..., Any] | None
    combine: bool = False  # a values_fields entry: convert(*inputs), called even with None inputs


class ValuesPlan:
    """The ORM paths to read and how each row becomes the serializer's dict."""

    def __init__(self, paths: Sequence[str], columns: Sequence[Column]) -> None:
        self.paths = tuple(paths)
        self.columns = tuple(columns)
        # what render reads per field per row, unpacked once per plan rather than once per request
        self._steps = tuple((c.name, c.indexes[0], c.convert, c.combine, c.indexes) for c in self.columns)

    def render(self, rows: Sequence[tuple]) -> list[dict[str, Any]]:
        # Plain columns are the common case; kept branch-light since this runs per field per row.
        out = []
        columns = self._steps
        for row in rows:
            item = {}
            for name, index, convert, combine, indexes in columns:
                if combine:
                    item[name] = convert(*[row[i] for i in indexes])
                    continue
                value = row[index]
                item[name] = value if convert is None or value is None else convert(value)
            out.append(item)
        return out


_plans: dict[tuple, ValuesPlan | None] = {}


def plan_for(serializer_class: type[serializers.BaseSerializer], queryset: QuerySet) -> ValuesPlan | None:
    """The plan for this serializer over this queryset's model and annotations, or None (serialize as usual)."""
    key = (serializer_class, queryset.model, tuple(sorted(queryset.query.annotations)))
    try:
        return _plans[key]
    except KeyError:
        pass
    # two threads deriving the same key at once store equal plans: a dict assignment needs no lock
    plan = _plans[key] = _derive(serializer_class, queryset)
    return plan


def _derive(serializer_class: type[serializers.BaseSerializer], queryset: QuerySet) -> ValuesPlan | None:
    if not issubclass(serializer_class, serializers.Serializer):
        return None
    if serializer_class.to_representation is not serializers.Serializer.to_representation:
        return None  # it post-processes rows (redaction, computed roles): only the serializer knows how
    meta = getattr(serializer_class, "Meta", None)
    if getattr(meta, "list_serializer_class", None) is not None:
        return None
    model = queryset.model
    annotations = queryset.query.annotations
    declared = getattr(serializer_class, "values_fields", {})
    paths: list[str] = []
    columns: list[Column] = []

    def index_of(path: str) -> int:
        if path not in paths:
            paths.append(path)
        return paths.index(path)

    for name, field in serializer_class().fields.items():
        if field.write_only:
            continue
        if name in declared:
            inputs, combine = declared[name]
            columns.append(Column(name, tuple(index_of(p) for p in inputs), combine, combine=True))
            continue
        found = _column(model, annotations, field)
        if found is None:
            return None
        path, convert = found
        columns.append(Column(name, (index_of(path),), convert))
    return ValuesPlan(paths, columns)


def _column(model: type[Model], annotations: dict, field: drf.Field) -> tuple[str, Callable | None] | None:
    """(ORM path, converter) for one DRF field, or None when its answer might differ from the value at that path."""
    attrs = list(field.source_attrs)
    if not attrs or field.source == "*":
        return None
    if type(field) is relations.PrimaryKeyRelatedField:
        # DRF answers serializable_value(fk) = the stored id; values_list("fk") reads that same column.
        if len(attrs) != 1 or field.pk_field is not None:
            return None
        try:
            fk = model._meta.get_field(attrs[0])
        except FieldDoesNotExist:
            return None
        if not (fk.is_relation and fk.concrete and (fk.many_to_one or fk.one_to_one)):
            return None
        return attrs[0], None
    if type(field) not in _PURE:
        return None
    if len(attrs) == 1 and attrs[0] in annotations:
        kind = annotations[attrs[0]].output_field.get_internal_type()
        return attrs[0], _converter(field, kind)
    current, through_nullable = model, False
    for position, attr in enumerate(attrs):
        try:
            model_field = current._meta.get_field(attr)
        except FieldDoesNotExist:
            return None  # a property or method: only the instance knows it
        last = position == len(attrs) - 1
        if model_field.is_relation:
            if last or not model_field.concrete or model_field.many_to_many or model_field.one_to_many:
                return None  # an object (or many rows) where a value is expected
            through_nullable = through_nullable or model_field.null
            current = model_field.related_model
        elif not last or not model_field.concrete:
            return None
    if through_nullable and not (field.default is None or (field.default is empty and field.allow_null)):
        return None  # DRF would leave the key out (or answer a default) where the row has NULL
    return "__".join(attrs), _converter(field, model_field.get_internal_type())


def _converter(field: drf.Field, column_type: str) -> Callable | None:
    if column_type not in _UNCHANGED.get(type(field), frozenset()):
        return field.to_representation
    if type(field) is drf.BigIntegerField and getattr(field, "coerce_to_string", api_settings.COERCE_BIGINT_TO_STRING):
        return field.to_representation  # "123"
    if type(field) is drf.ChoiceField:
        # It answers choice_strings_to_values.get(str(value), value): the value itself when the choices' keys have
        # the column's type (TextChoices on a text column); e.g. "1" for 1 when they are strings on an integer one.
        kind = str if column_type in _TEXTS else int
        if not all(type(key) is kind for key in field.choice_strings_to_values.values()):
            return field.to_representation
    return None


class FastListMixin:
    """``list()`` through a :class:`ValuesPlan` when the serializer has one; the same filters, ordering, paging and
    answer as DRF's ``ListModelMixin.list``, without model instances or per-row field objects."""

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.get_queryset()
        plan = plan_for(self.get_serializer_class(), queryset)
        if plan is None or not isinstance(self.paginator, Pagination | None):
            return super().list(request, *args, **kwargs)
        queryset = self.filter_queryset(queryset)
        rows = queryset.values_list(*plan.paths)
        page = None if self.paginator is None else \
            self.paginator.paginate_queryset(rows, request, view=self, count_queryset=queryset)  # fmt: skip
        if page is None:
            return Response(plan.render(rows))
        return self.get_paginated_response(plan.render(page))

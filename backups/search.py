"""Find anything: weddings by couple, city or date, files by name, across the fleet.

On PostgreSQL a trigram index (pg_trgm, GIN, migration 0011) serves both a case-insensitive substring match and a
word-similarity match (typos: "Jhonson" finds "Johnson"), ranked by similarity. On SQLite (`make run`) a plain
case-insensitive substring match. Files are capped at FILES_CAP matches before ranking: a query matching most of a
million files ("jpg") stays fast and says it was cut short instead of sorting them all.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

from django.contrib.postgres.lookups import TrigramWordSimilar
from django.contrib.postgres.search import TrigramWordSimilarity
from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import F, Lookup, Q, QuerySet, Value

from .models import Asset, Wedding

MIN_LENGTH = 3  # a trigram index cannot narrow down shorter text
FILES_CAP = 1_000
WEDDINGS_PER_PAGE = 20
FILES_PER_PAGE = 25
_DAY = re.compile(r"^(\d{4})-(\d{1,2})(?:-(\d{1,2}))?$")


class ILike(Lookup):
    """`ILIKE`, which the trigram index serves (Django's icontains compares UPPER(column), which it does not)."""

    lookup_name = "ilike"

    def as_sql(self, compiler, connection):  # noqa: ANN001, ANN201 - Django's signature
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} ILIKE {rhs}", [*lhs_params, *rhs_params]


def search_trigram() -> bool:
    return connection.vendor == "postgresql"


def search_date_range(*, query: str) -> tuple[dt.date, dt.date] | None:
    """"2024-06-01" is that day, "2024-06" that month; anything else is not a date."""
    match = _DAY.match(query.strip())
    if not match:
        return None
    year, month, day = (int(g) if g else None for g in match.groups())
    try:
        if day:
            return (dt.date(year, month, day),) * 2
        return dt.date(year, month, 1), dt.date(year, month, calendar.monthrange(year, month)[1])
    except ValueError:
        return None


def _text_match(*, field: str, query: str) -> Q:
    if not search_trigram():
        return Q(**{f"{field}__icontains": query})
    pattern = "%" + re.sub(r"([\\%_])", r"\\\1", query) + "%"
    return Q(ILike(F(field), Value(pattern))) | Q(TrigramWordSimilar(F(field), Value(query)))


def weddings_matching(*, query: str) -> QuerySet[Wedding]:
    """By date when the query is one, else by couple or city, best match first."""
    days = search_date_range(query=query)
    if days:
        return Wedding.objects.filter(date__range=days).order_by("date", "couple", "pk")
    weddings = Wedding.objects.filter(_text_match(field="couple", query=query) | _text_match(field="city", query=query))
    if not search_trigram():
        return weddings.order_by("-date", "couple", "pk")
    return weddings.annotate(
        score=TrigramWordSimilarity(Value(query), "couple") + TrigramWordSimilarity(Value(query), "city"),
    ).order_by("-score", "-date", "pk")


def assets_candidates(*, query: str) -> QuerySet[Asset]:
    """Ids of up to FILES_CAP files whose path holds the query (or, on PostgreSQL, a word like it), in no order:
    sorting every match first is what would make a broad query slow."""
    return Asset.objects.filter(_text_match(field="relative_path", query=query)).order_by().values("pk")[:FILES_CAP]


def assets_matching(*, query: str) -> QuerySet[Asset]:
    """The candidates, best first."""
    assets = Asset.objects.filter(pk__in=assets_candidates(query=query)).select_related("wedding")
    if not search_trigram():
        return assets.order_by("relative_path", "pk")
    return assets.annotate(score=TrigramWordSimilarity(Value(query), "relative_path")).order_by(
        "-score", "relative_path", "pk")


def search_results(*, query: str, wedding_page: str | int = 1, file_page: str | int = 1) -> dict:
    """What the search page shows: a page of weddings and a page of files (None when the query is too short)."""
    query = query.strip()[:200]
    result = {"query": query, "weddings": None, "files": None, "files_capped": False,
              "too_short": bool(query) and len(query) < MIN_LENGTH and not search_date_range(query=query)}
    if not query or result["too_short"]:
        return result
    result["weddings"] = Paginator(weddings_matching(query=query), WEDDINGS_PER_PAGE).get_page(wedding_page)
    files: Page = Paginator(assets_matching(query=query), FILES_PER_PAGE).get_page(file_page)
    result["files"] = files
    result["files_capped"] = files.paginator.count >= FILES_CAP
    return result

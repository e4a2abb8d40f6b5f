"""Shared links for the couple: one Dropbox link to the wedding's folder, only when they allowed sharing."""

from __future__ import annotations

import logging

from django.db.models import Count, Q

from providers.backends import backend_for
from providers.backends.base import ProviderError
from providers.models import Provider

from .layout import wedding_prefix
from .models import Replica, Wedding

log = logging.getLogger(__name__)


def sharing_provider(wedding: Wedding) -> Provider | None:
    """The usable Dropbox provider holding the most verified copies of the wedding, if any."""
    verified = Q(replicas__asset__wedding=wedding, replicas__status=Replica.Status.VERIFIED)
    return (
        Provider.objects.filter(verified, kind=Provider.Kind.DROPBOX, enabled=True)
        .exclude(status=Provider.Status.DOWN)
        .annotate(held=Count("replicas", filter=verified))
        .order_by("-held", "name")
        .first()
    )


def _store(wedding: Wedding, link: str) -> None:
    if wedding.shared_link != link:
        wedding.shared_link = link
        wedding.save(update_fields=["shared_link", "updated"])


def _revoke(wedding: Wedding) -> bool:
    """Withdraw the wedding's link on Dropbox itself (clearing our record alone would leave it live). True once
    an account revoked it, or every Dropbox account answered that it has no such link."""
    answered = True
    for provider in Provider.objects.filter(kind=Provider.Kind.DROPBOX, enabled=True):
        try:
            if backend_for(provider).revoke_link(wedding.shared_link):
                return True
        except ProviderError as exc:
            answered = False
            log.warning("could not revoke the shared link of %s on %s: %s", wedding.slug, provider.name, exc)
    return answered


def wedding_share(*, wedding: Wedding) -> str:
    """The link to the wedding's Dropbox folder, created if needed and stored on the wedding; "" when none.

    Never raises for a provider failure: sharing is a courtesy, not part of the backup. When no
    Dropbox provider can answer now, a link stored earlier is kept (it still works) but "" is returned.
    """
    if not wedding.sharing_allowed:
        if wedding.shared_link and not _revoke(wedding):
            return ""  # the link still works: kept on record until a Dropbox provider confirms it is gone
        _store(wedding, "")
        return ""
    provider = sharing_provider(wedding)
    if provider is None:
        return ""
    try:
        link = backend_for(provider).folder_link(wedding_prefix(wedding))
    except ProviderError as exc:
        log.warning("no shared link for wedding %s on %s: %s", wedding.slug, provider.name, exc)
        return ""
    _store(wedding, link)
    return link

import pytest

from providers.backends import backend_cached
from providers.models import Provider
from tests.factories import make_provider

pytestmark = pytest.mark.django_db


def test_one_backend_per_provider_until_what_it_is_built_from_changes(tmp_path):
    provider = make_provider(kind="watched_folder", bucket=str(tmp_path / "a"), options={"create": True})
    first = backend_cached(provider)
    assert backend_cached(Provider.objects.get(pk=provider.pk)) is first

    Provider.objects.filter(pk=provider.pk).update(bucket=str(tmp_path / "b"))  # leaves `updated` alone
    moved = backend_cached(Provider.objects.get(pk=provider.pk))
    assert moved is not first and moved.config.bucket == str(tmp_path / "b")

    provider = Provider.objects.get(pk=provider.pk)
    provider.credentials = {"token": "rotated"}
    provider.save()
    assert backend_cached(Provider.objects.get(pk=provider.pk)) is not moved


def test_two_providers_never_share_a_backend(tmp_path):
    a = make_provider(kind="watched_folder", bucket=str(tmp_path / "same"), options={"create": True})
    b = make_provider(kind="watched_folder", bucket=str(tmp_path / "same"), options={"create": True})
    assert backend_cached(a) is not backend_cached(b)

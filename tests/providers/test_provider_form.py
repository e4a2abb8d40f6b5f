"""The provider form checks the connection before saving, and says clearly what is wrong."""

import uuid

import pytest

from providers.forms import ProviderForm
from providers.localservers.seaweedfs import create_bucket
from tests.fixtures.s3 import ACCESS_KEY, SECRET_KEY, ensure_running

pytestmark = pytest.mark.django_db


def s3_form(seaweedfs, bucket, *, secret=SECRET_KEY, endpoint=None, **extra):
    creds = f'{{"access_key_id": "{ACCESS_KEY}", "secret_access_key": "{secret}"}}'
    data = {"name": f"s3-{uuid.uuid4().hex[:6]}", "kind": "aws_s3", "region": "us-east-1", "bucket": bucket,
            "endpoint": endpoint or seaweedfs.extra["endpoint"], "options": "{}", "status": "active",
            "enabled": "on", "check_connection": "on", "new_credentials": creds, **extra}
    return ProviderForm(data)


@pytest.fixture
def bucket(seaweedfs):
    ensure_running(seaweedfs)
    return create_bucket(seaweedfs, f"wb-{uuid.uuid4().hex[:16]}")


def test_a_working_provider_is_saved(seaweedfs, bucket):
    form = s3_form(seaweedfs, bucket)
    assert form.is_valid(), form.errors
    assert form.save().credentials["access_key_id"] == ACCESS_KEY


def test_a_wrong_key_is_refused_with_a_clear_message(seaweedfs, bucket):
    form = s3_form(seaweedfs, bucket, secret="not-the-secret")
    assert not form.is_valid()
    message = " ".join(form.non_field_errors())
    assert message.startswith("Connection check failed:") and "not-the-secret" not in message
    assert "credential" in message.lower() or "signature" in message.lower() or "denied" in message.lower()


def test_a_missing_bucket_is_named(seaweedfs, bucket):
    form = s3_form(seaweedfs, "wb-no-such-bucket-here")
    assert not form.is_valid()
    assert "wb-no-such-bucket-here" in " ".join(form.non_field_errors())


def test_a_bad_endpoint_is_refused(seaweedfs, bucket):
    form = s3_form(seaweedfs, bucket, endpoint="http://127.0.0.1:9")
    assert not form.is_valid()
    assert "Connection check failed" in " ".join(form.non_field_errors())


def test_a_missing_watched_folder_is_refused(tmp_path):
    form = ProviderForm({"name": "nas", "kind": "watched_folder", "bucket": str(tmp_path / "not-mounted"),
                         "options": "{}", "status": "active", "enabled": "on", "check_connection": "on"})
    assert not form.is_valid()
    assert "not-mounted" in " ".join(form.non_field_errors())


def test_the_check_can_be_skipped_for_a_provider_that_is_not_reachable_yet(tmp_path):
    form = ProviderForm({"name": "nas", "kind": "watched_folder", "bucket": str(tmp_path / "later"),
                         "options": "{}", "status": "active", "enabled": "on"})
    assert form.is_valid(), form.errors

"""Two providers on one bucket/folder are one copy, not two: refused wherever a provider is saved."""

import pytest

from providers.backends import backend_cached, backend_for
from providers.backends.base import PermanentError
from providers.config import ConfigError, providers_load
from providers.forms import ProviderForm
from providers.models import Provider
from tests.factories import make_provider

pytestmark = pytest.mark.django_db


def form_data(**overrides):
    data = {"name": "nas-2", "kind": "watched_folder", "region": "us-east-1", "bucket": "", "endpoint": "",
            "default_storage_class": "", "options": "{}", "enabled": True, "notes": "", "status": "active"}
    data.update(overrides)
    return data


def test_the_admin_form_refuses_a_second_provider_on_the_same_folder(tmp_path):
    (tmp_path / "nas").mkdir()
    make_provider(name="nas-1", kind="watched_folder", bucket=str(tmp_path / "nas"))
    form = ProviderForm(data=form_data(bucket=str(tmp_path / "nas" / ".." / "nas")))
    assert not form.is_valid()
    assert "already writes to this bucket/folder" in str(form.errors)
    assert ProviderForm(data=form_data(bucket=str(tmp_path / "other"))).is_valid()


def test_the_same_s3_bucket_behind_one_endpoint_is_one_place_whatever_the_kind():
    make_provider(name="s3", kind="aws_s3", bucket="photos", endpoint="http://127.0.0.1:8333")
    text = ("- {name: wasabi, kind: wasabi, region: us-east-1, bucket: photos, endpoint: 'http://127.0.0.1:8333/',"
            " credentials: {access_key_id: a, secret_access_key: b}}\n")
    with pytest.raises(ConfigError, match="already writes to this bucket"):
        providers_load(text=text)


def test_load_providers_refuses_two_entries_on_one_folder(tmp_path):
    text = (f"- {{name: a, kind: watched_folder, bucket: '{tmp_path}'}}\n"
            f"- {{name: b, kind: watched_folder, bucket: '{tmp_path}/'}}\n")
    with pytest.raises(ConfigError, match="write to the same bucket/folder"):
        providers_load(text=text)


# -- endpoints: where a stored key may be sent --------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ["http://169.254.169.254/", "http://[fe80::1]:9000", "http://metadata.google.internal",
                                      "http://[fd00:ec2::254]/", "http://100.100.100.200/"])
def test_metadata_and_link_local_endpoints_are_always_refused(endpoint, settings):
    settings.WEDBACKUP_ALLOW_PRIVATE_ENDPOINTS = True
    form = ProviderForm(data=form_data(kind="aws_s3", bucket="photos", endpoint=endpoint))
    assert not form.is_valid() and "endpoint" in form.errors
    with pytest.raises(ConfigError, match="endpoint"):
        providers_load(text=f"- {{name: x, kind: aws_s3, bucket: photos, endpoint: '{endpoint}'}}\n")


def test_private_endpoints_need_the_setting(settings):
    settings.WEDBACKUP_ALLOW_PRIVATE_ENDPOINTS = False
    assert "endpoint" in ProviderForm(data=form_data(kind="aws_s3", bucket="p", endpoint="http://10.1.2.3:9000")).errors
    assert "endpoint" in ProviderForm(data=form_data(kind="aws_s3", bucket="p", endpoint="http://127.0.0.1:8333")).errors
    settings.WEDBACKUP_ALLOW_PRIVATE_ENDPOINTS = True
    assert ProviderForm(data=form_data(kind="aws_s3", bucket="p", endpoint="http://10.1.2.3:9000")).is_valid()


def test_moving_a_provider_needs_its_credentials_again():
    provider = make_provider(name="s3", kind="aws_s3", bucket="photos", endpoint="https://s3.example.com",
                             credentials={"access_key_id": "AKIA", "secret_access_key": "s3cr3t"})
    data = form_data(name="s3", kind="aws_s3", bucket="photos", endpoint="https://evil.example.net")
    form = ProviderForm(data=data, instance=provider)
    assert not form.is_valid() and "enter the credentials again" in str(form.errors)
    form = ProviderForm(data={**data, "new_credentials": '{"access_key_id": "AKIA", "secret_access_key": "new"}'},
                        instance=provider)
    assert form.is_valid(), form.errors
    provider.refresh_from_db()  # validating a ModelForm writes its values into the instance
    unchanged = ProviderForm(data={**data, "endpoint": "https://s3.example.com", "notes": "renamed"}, instance=provider)
    assert unchanged.is_valid(), unchanged.errors
    with pytest.raises(ConfigError, match="name the credentials again"):
        providers_load(text="- {name: s3, kind: aws_s3, bucket: other-bucket, endpoint: 'https://s3.example.com'}\n")


def test_the_connection_check_never_shows_what_a_foreign_server_replied(settings):
    """An endpoint someone else runs answers with text of its choosing: the form shows our words and the code."""
    import http.server
    import threading

    body = (b'<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>Your files are ours: pay at '
            b'evil.example</Message></Error>')

    class Hostile(http.server.BaseHTTPRequestHandler):
        def _reply(self):
            self.send_response(403)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_PUT(self):  # noqa: N802 (http.server's naming)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._reply()

        do_GET = do_HEAD = do_POST = _reply  # noqa: N815

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings.WEDBACKUP_ALLOW_PRIVATE_ENDPOINTS = True
        form = ProviderForm(data={**form_data(kind="aws_s3", bucket="photos"), "check_connection": "on",
                                  "endpoint": f"http://127.0.0.1:{server.server_port}",
                                  "new_credentials": '{"access_key_id": "AKIA", "secret_access_key": "s"}'})
        assert not form.is_valid()
        message = " ".join(form.non_field_errors())
        assert "Connection check failed" in message and "AccessDenied" in message
        assert "evil.example" not in message and "pay at" not in message
    finally:
        server.shutdown()


def test_an_endpoint_changed_behind_the_forms_back_gets_no_backend(settings):
    """Checked again when a backend is built (workers, probes): the stored keys never go to a metadata service."""
    settings.WEDBACKUP_ALLOW_PRIVATE_ENDPOINTS = True
    provider = make_provider(name="s3", kind="aws_s3", bucket="photos", endpoint="https://s3.example.com",
                             credentials={"access_key_id": "AKIA", "secret_access_key": "s3cr3t"})
    assert backend_for(provider) and backend_cached(provider)
    Provider.objects.filter(pk=provider.pk).update(endpoint="http://169.254.169.254/")
    provider.refresh_from_db()
    for build in (backend_for, backend_cached):
        with pytest.raises(PermanentError, match="endpoint refused"):
            build(provider)
    settings.WEDBACKUP_ALLOW_PRIVATE_ENDPOINTS = False
    Provider.objects.filter(pk=provider.pk).update(endpoint="http://10.1.2.3:9000")
    provider.refresh_from_db()
    with pytest.raises(PermanentError, match="private address"):
        backend_cached(provider)

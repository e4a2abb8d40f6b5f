"""Azure-specific behaviour on a real Azurite: tiers, rehydration, Content-MD5, credentials forms."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import ContainerSasPermissions, generate_container_sas

from providers.backends import backend_from_config
from providers.backends.azure import AzureBlobBackend
from providers.backends.base import (
    HashingReader,
    IntegrityError,
    NeedsRestore,
    PermanentError,
    TransientError,
)
from providers.localservers.azurite import DEV_ACCOUNT_KEY, DEV_ACCOUNT_NAME, connection_string
from tests.fixtures.azure import AZURE_PART_SIZE, WRONG_ACCOUNT_KEY, azure_config, azure_service


def md5(data: bytes):
    return hashlib.md5(data, usedforsecurity=False)


def put_bytes(backend, key: str, data: bytes, **kwargs):
    return backend.put(key, io.BytesIO(data), len(data), sha256=hashlib.sha256(data).hexdigest(), **kwargs)


class WrongMD5Backend(AzureBlobBackend):
    """Declares a Content-MD5 that does not match the bytes, as a corrupted transfer would look to Azure."""

    def _md5(self, reader: HashingReader) -> bytes:
        return md5(b"something else").digest()


class ChangingSource(io.BytesIO):
    """A source whose last byte changes after ingest computed its sha256."""

    def __init__(self, data: bytes):
        super().__init__(data[:-1] + bytes([data[-1] ^ 1]))


@pytest.fixture
def backend(azure_target) -> AzureBlobBackend:
    return azure_target.backend


@pytest.fixture
def blobs(azurite, azure_container):
    return azure_service(azurite).get_container_client(azure_container)


def test_registry_builds_it(azurite, azure_container):
    assert isinstance(backend_from_config(azure_config(azurite, azure_container)), AzureBlobBackend)


def test_small_put_declares_content_md5_and_type(backend, blobs):
    data = b"first dance" * 100
    info = put_bytes(backend, "a/small.txt", data, content_type="text/plain", metadata={"wedding": "w1"})
    assert info.checksums == {"md5": md5(data).hexdigest()}
    assert (info.size, info.storage_class, info.metadata) == (len(data), "Hot", {"wedding": "w1"})
    props = blobs.get_blob_client("a/small.txt").get_blob_properties()
    assert props.content_settings.content_type == "text/plain"
    assert bytes(props.content_settings.content_md5) == md5(data).digest()


class RecordingBackend(AzureBlobBackend):
    """Records every request's method and headers; ``hide_response_md5`` drops Content-MD5 from PUT answers."""

    hide_response_md5 = False

    def __init__(self, config):
        super().__init__(config)
        self.sent: list[tuple[str, dict[str, str]]] = []

    def _client_kwargs(self):
        def on_request(request):
            self.sent.append((request.http_request.method, dict(request.http_request.headers)))

        def on_response(response):
            if self.hide_response_md5 and response.http_request.method == "PUT":
                response.http_response.headers.pop("Content-MD5", None)

        return {**super()._client_kwargs(), "raw_request_hook": on_request, "raw_response_hook": on_response}


def test_small_put_is_verified_by_the_md5_azure_answers_without_a_head(azurite, azure_container, blobs):
    backend = RecordingBackend(azure_config(azurite, azure_container))
    data = os.urandom(3000)
    info = put_bytes(backend, "one.jpg", data, metadata={"wedding": "w1"})
    assert [method for method, _ in backend.sent] == ["PUT"]  # no HEAD after it
    headers = backend.sent[0][1]
    # Our MD5 goes out as the transactional Content-MD5 (checked by Azure) and as the blob's stored MD5.
    assert headers["Content-MD5"] == headers["x-ms-blob-content-md5"] == base64.b64encode(md5(data).digest()).decode()
    assert (info.size, info.checksums, info.storage_class, info.metadata) == (
        len(data), {"md5": md5(data).hexdigest()}, "Hot", {"wedding": "w1"})
    props = blobs.get_blob_client("one.jpg").get_blob_properties()
    assert (props.size, bytes(props.content_settings.content_md5)) == (len(data), md5(data).digest())
    assert props.etag.strip('"') == info.etag


def test_small_put_answer_without_md5_is_checked_with_a_head(azurite, azure_container):
    backend = RecordingBackend(azure_config(azurite, azure_container))
    backend.hide_response_md5 = True
    data = os.urandom(3000)
    info = put_bytes(backend, "two.jpg", data)
    assert [method for method, _ in backend.sent] == ["PUT", "HEAD"]
    assert info.checksums == {"md5": md5(data).hexdigest()}


def test_large_put_commits_one_block_per_part(backend, blobs):
    data = os.urandom(2 * AZURE_PART_SIZE + 1234)
    info = put_bytes(backend, "big.bin", data, storage_class="Cool")
    assert (info.size, info.storage_class) == (len(data), "Cool")
    assert info.checksums["md5"] == md5(data).hexdigest()
    committed, uncommitted = blobs.get_blob_client("big.bin").get_block_list("all")
    assert [b.size for b in committed] == [AZURE_PART_SIZE, AZURE_PART_SIZE, 1234]
    assert uncommitted == []
    with backend.open("big.bin") as fh:
        assert fh.read() == data


def test_archived_blob_needs_restore_then_reads_after_rehydration(backend):
    data = b"archived vows"
    assert put_bytes(backend, "vows.txt", data, storage_class="Archive").storage_class == "Archive"
    with pytest.raises(NeedsRestore, match="Archive"):
        backend.open("vows.txt")
    backend.request_restore("vows.txt")
    assert backend.head("vows.txt").storage_class == "Hot"  # Azurite rehydrates at once; Azure takes hours
    with backend.open("vows.txt") as fh:
        assert fh.read() == data


def test_restore_goes_back_to_the_default_class(azurite, azure_container):
    backend = AzureBlobBackend(azure_config(azurite, azure_container, default_storage_class="Cool",
                                            options={"rehydrate_priority": "High"}))
    put_bytes(backend, "k", b"x", storage_class="Archive")
    backend.request_restore("k")
    assert backend.head("k").storage_class == "Cool"


def test_restore_of_a_blob_not_archived_changes_nothing(backend):
    put_bytes(backend, "cool", b"x", storage_class="Cool")
    backend.request_restore("cool")
    assert backend.head("cool").storage_class == "Cool"


def test_tier_change_persists_for_a_fresh_client(azure_target, blobs):
    put_bytes(azure_target.backend, "k", b"tiers")
    assert azure_target.backend.change_storage_class("k", "Cold").storage_class == "Cold"
    assert azure_target.make_backend().head("k").storage_class == "Cold"
    assert blobs.get_blob_client("k").get_blob_properties().blob_tier == "Cold"
    assert azure_target.backend.change_storage_class("k", "Archive").storage_class == "Archive"
    with pytest.raises(PermanentError, match="no storage class"):
        azure_target.backend.change_storage_class("k", "Glacier")


def test_wrong_content_md5_on_a_single_upload_is_an_integrity_error(azurite, azure_container, backend):
    wrong = WrongMD5Backend(azure_config(azurite, azure_container))
    with pytest.raises(IntegrityError, match="MD5"):
        put_bytes(wrong, "k", b"bytes the server hashes itself")
    assert backend.head("k") is None


def test_wrong_whole_blob_md5_after_block_commit_deletes_the_blob(azurite, azure_container, backend):
    # Put Block List stores x-ms-blob-content-md5 unchecked (blocks were checked one by one), so we compare after.
    wrong = WrongMD5Backend(azure_config(azurite, azure_container))
    with pytest.raises(IntegrityError, match="deleted"):
        put_bytes(wrong, "k", os.urandom(AZURE_PART_SIZE + 10))
    assert backend.head("k") is None


def test_changed_source_never_becomes_a_committed_blob(backend):
    data = os.urandom(AZURE_PART_SIZE + 10)
    with pytest.raises(IntegrityError, match="sha256"):
        backend.put("k", ChangingSource(data), len(data), sha256=hashlib.sha256(data).hexdigest())
    assert backend.head("k") is None
    with pytest.raises(IntegrityError, match="sha256"):
        backend.put("s", ChangingSource(b"tiny"), 4, sha256=hashlib.sha256(b"tiny").hexdigest())
    assert backend.head("s") is None


def test_a_source_longer_than_declared_is_refused(backend):
    with pytest.raises(IntegrityError, match="grew"):
        backend.put("k", io.BytesIO(b"12345"), 4, sha256=hashlib.sha256(b"1234").hexdigest())
    assert backend.head("k") is None


def test_connection_string_credentials(azurite, azure_container):
    backend = AzureBlobBackend(azure_config(azurite, azure_container, endpoint="",
                                            credentials={"connection_string": connection_string(azurite)}))
    put_bytes(backend, "k", b"cs")
    assert backend.head("k").size == 2


def test_sas_token_credentials(azurite, azure_container):
    sas = generate_container_sas(
        DEV_ACCOUNT_NAME, azure_container, account_key=DEV_ACCOUNT_KEY,
        permission=ContainerSasPermissions(read=True, write=True, delete=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    backend = AzureBlobBackend(azure_config(azurite, azure_container, credentials={"sas_token": sas}))
    put_bytes(backend, "k", b"sas")
    assert [o.key for o in backend.list()] == ["k"]


def test_wrong_key_is_permanent_and_never_quoted(azurite, azure_container):
    backend = AzureBlobBackend(azure_config(azurite, azure_container, credentials={
        "account_name": DEV_ACCOUNT_NAME, "account_key": WRONG_ACCOUNT_KEY}))
    with pytest.raises(PermanentError, match="refused the credentials") as caught:
        put_bytes(backend, "k", b"x")
    assert WRONG_ACCOUNT_KEY not in str(caught.value)
    assert not isinstance(caught.value, TransientError)


def test_missing_container_names_it(azurite):
    backend = AzureBlobBackend(azure_config(azurite, "no-such-container"))
    with pytest.raises(PermanentError, match="no-such-container"):
        backend.head("k")
    with pytest.raises(PermanentError, match="no-such-container"):
        list(backend.list())


def test_missing_credentials_and_bad_options_are_refused(azurite, azure_container):
    with pytest.raises(PermanentError, match="credentials need"):
        AzureBlobBackend(azure_config(azurite, azure_container, credentials={})).head("k")
    with pytest.raises(PermanentError, match="unknown option"):
        AzureBlobBackend(azure_config(azurite, azure_container, options={"tier": "Hot"}))
    with pytest.raises(PermanentError, match="rehydrate_priority"):
        AzureBlobBackend(azure_config(azurite, azure_container, options={"rehydrate_priority": "Now"}))


def test_list_pages_lazily(azurite, azure_container):
    backend = AzureBlobBackend(azure_config(azurite, azure_container, options={"page_size": 2}))
    for i in range(5):
        put_bytes(backend, f"p/{i}", b"x")
    put_bytes(backend, "q/other", b"x")
    listing = backend.list("p/")
    assert next(listing).key == "p/0"
    assert [o.key for o in listing] == ["p/1", "p/2", "p/3", "p/4"]


def test_an_outage_is_noticed_within_seconds(azure_target):
    put_bytes(azure_target.backend, "k", b"x")
    azure_target.server.stop()
    try:
        started = time.monotonic()
        with pytest.raises(TransientError, match="cannot reach"):
            azure_target.backend.head("k")
        assert time.monotonic() - started < 10
    finally:
        azure_target.server.start()
    assert azure_target.backend.head("k").size == 1


def test_proxy_variables_are_honoured_though_read_once_per_client(azurite, azure_container, monkeypatch):
    monkeypatch.delenv("http_proxy", raising=False)  # requests prefers the lower-case form
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there: every request would fail
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(TransientError, match="cannot reach"):
        put_bytes(AzureBlobBackend(azure_config(azurite, azure_container)), "k", b"via the proxy")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    backend = AzureBlobBackend(azure_config(azurite, azure_container))
    assert put_bytes(backend, "k", b"direct").size == 6


def test_a_blob_up_to_a_large_part_size_is_one_put_blob_so_its_md5_fits_the_request(azurite, azure_container):
    # Over the SDK's default 64 MiB single-put limit the SDK would split the upload into blocks, and the
    # whole-blob Content-MD5 would then be sent with each block.
    backend = RecordingBackend(azure_config(azurite, azure_container, part_size=72 * 1024 * 1024))
    data = os.urandom(65 * 1024 * 1024)
    info = put_bytes(backend, "long-take.mov", data)
    assert [method for method, _ in backend.sent] == ["PUT"]
    assert (info.size, info.checksums) == (len(data), {"md5": md5(data).hexdigest()})


def test_a_ca_bundle_named_in_the_environment_is_still_used(azurite, azure_container, monkeypatch, tmp_path):
    backend = AzureBlobBackend(azure_config(azurite, azure_container))
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    assert backend._client_kwargs()["connection_verify"] is True
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tmp_path / "curl.pem"))
    assert backend._client_kwargs()["connection_verify"] == str(tmp_path / "curl.pem")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "corp-ca.pem"))  # requests' own name wins
    assert backend._client_kwargs()["connection_verify"] == str(tmp_path / "corp-ca.pem")

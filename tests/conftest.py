"""Shared fixtures. Real servers are started once per session by the plugins below."""

pytest_plugins = [
    "tests.fixtures.watched_folder",
    "tests.fixtures.s3",
    "tests.fixtures.gcs",
    "tests.fixtures.azure",
    "tests.fixtures.b2",
    "tests.fixtures.dropbox",
    "tests.fixtures.box",
]


import pytest  # noqa: E402


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("staff", "staff@example.com", "pw-staff-1234", is_staff=True,
                                                 is_superuser=True)


@pytest.fixture
def plain_user(django_user_model):
    return django_user_model.objects.create_user("plain", "plain@example.com", "pw-plain-1234")


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def plain_client(client, plain_user):
    client.force_login(plain_user)
    return client

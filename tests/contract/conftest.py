"""The contract suite runs once per target; each target's fixture lives in tests/fixtures/<name>.py."""

import pytest

CONTRACT_TARGETS = ["watched_folder", "s3", "wasabi", "gcs", "azure", "b2", "dropbox", "box"]


@pytest.fixture(params=CONTRACT_TARGETS)
def target(request):
    """A ContractTarget; a missing ``<name>_target`` fixture is an error, never a skip."""
    return request.getfixturevalue(f"{request.param}_target")

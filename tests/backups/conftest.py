import pytest

from backups.models import BackupPolicy


@pytest.fixture
def policy():
    """Two copies, one vendor: what a fleet of watched folders (one kind) can meet."""
    p = BackupPolicy.default()
    p.min_copies, p.min_distinct_providers = 2, 1
    p.save()
    return p

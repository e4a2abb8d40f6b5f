"""What a backend's fixture hands the contract suite."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from providers.backends.base import Backend
from providers.localservers.base import RunningServer


@dataclass
class ContractTarget:
    name: str
    #: A backend on a fresh, empty bucket/container/folder for this test.
    backend: Backend
    #: Build another backend on the same server with BackendConfig fields overridden
    #: (e.g. ``credentials={...}`` or ``bucket="missing"``), for the error tests.
    make_backend: Callable[..., Backend]
    #: Credentials the server refuses (None when the server checks none: say why in ``notes``).
    bad_credentials: dict[str, Any] | None = None
    #: The server process, so the suite can stop and restart it (None: nothing to stop).
    server: RunningServer | None = None
    #: False when the local server accepts a class change but does not persist it.
    class_change_persists: bool = True
    #: A storage class other than the default to change to (None: the backend has no classes).
    other_storage_class: str | None = None
    #: Re-create this test's bucket after a server restart lost it (None: nothing to re-create).
    reset: Callable[[], None] | None = None
    notes: dict[str, str] = field(default_factory=dict)

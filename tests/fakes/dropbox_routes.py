"""The routes of the fake Dropbox API (tests/fakes/dropbox_server.py serves them).

Shapes follow Dropbox's HTTP reference: results as the route's JSON, route errors as 409
``{"error_summary": "path/not_found/..", "error": {".tag": ...}}``. Every content route checks an
optional ``content_hash`` of the bytes in that call; files report the whole-file ``content_hash``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.dropbox_server import FakeDropbox

BLOCK_SIZE = 4 * 1024 * 1024
UPLOAD_LIMIT = 150 * 1024 * 1024


def content_hash(data: bytes) -> str:
    """Dropbox's content_hash, written independently of the SDK's hasher on purpose."""
    digests = b"".join(hashlib.sha256(data[i:i + BLOCK_SIZE]).digest() for i in range(0, len(data), BLOCK_SIZE))
    return hashlib.sha256(digests).hexdigest()


class Reply(Exception):
    """Raised by a route to answer with something other than 200."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def route_error(tags: list[str], error: dict[str, Any]) -> Reply:
    return Reply(409, {"error_summary": "/".join(tags) + "/..", "error": error})


def lookup_error(outer: str, tag: str) -> Reply:
    return route_error([outer, tag], {".tag": outer, outer: {".tag": tag}})


def _ts(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Entry:
    path_display: str
    id: str
    folder: bool = False
    data: bytes = b""
    rev: str = ""
    modified: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    client_modified: str | None = None

    @property
    def name(self) -> str:
        return self.path_display.rsplit("/", 1)[-1]

    def metadata(self, *, tag: bool = True) -> dict[str, Any]:
        md: dict[str, Any] = {"name": self.name, "id": self.id, "path_lower": self.path_display.lower(),
                              "path_display": self.path_display}
        if self.folder:
            return {".tag": "folder", **md} if tag else md
        md.update(client_modified=self.client_modified or _ts(self.modified), server_modified=_ts(self.modified),
                  rev=self.rev, size=len(self.data), is_downloadable=True, content_hash=content_hash(self.data))
        return {".tag": "file", **md} if tag else md


@dataclass
class Session:
    data: bytearray
    closed: bool = False


class WriteFailure(Exception):
    def __init__(self, tag: str, conflict: str | None = None):
        super().__init__(tag)
        self.tag, self.conflict = tag, conflict

    def error(self) -> dict[str, Any]:
        return {".tag": self.tag, self.tag: {".tag": self.conflict}} if self.conflict else {".tag": self.tag}

    def tags(self) -> list[str]:
        return [self.tag] + ([self.conflict] if self.conflict else [])


def check_path(path: Any, fail: Any) -> str:
    if not isinstance(path, str) or not path.startswith("/") or path.endswith("/") or "//" in path:
        raise fail("malformed_path")
    if any(part in (".", "..") for part in path.split("/")):
        raise fail("malformed_path")
    return path


# -- routes --------------------------------------------------------------------
def _check_hash(arg: dict[str, Any], body: bytes) -> None:
    expected = arg.get("content_hash")
    if expected is not None and expected != content_hash(body):
        raise route_error(["content_hash_mismatch"], {".tag": "content_hash_mismatch"})


def upload(fake: FakeDropbox, space: str, arg: dict[str, Any], body: bytes) -> dict[str, Any]:
    if len(body) > UPLOAD_LIMIT:
        raise route_error(["payload_too_large"], {".tag": "payload_too_large"})
    _check_hash(arg, body)
    try:
        return fake.commit(space, arg.get("path"), body, arg).metadata(tag=False)
    except WriteFailure as exc:
        raise route_error(["path", *exc.tags()], {".tag": "path", "reason": exc.error(),
                                                  "upload_session_id": "pid_upload_session:none"}) from None


def session_start(fake: FakeDropbox, space: str, arg: dict[str, Any], body: bytes) -> dict[str, Any]:
    _check_hash(arg, body)
    session_id = "pid_upload_session:" + secrets.token_urlsafe(18)
    fake.sessions[session_id] = Session(bytearray(body), closed=bool(arg.get("close")))
    return {"session_id": session_id}


def _session(fake: FakeDropbox, cursor: dict[str, Any], wrap: Any) -> Session:
    session = fake.sessions.get(cursor.get("session_id", ""))
    if session is None:
        raise wrap({".tag": "not_found"}, ["not_found"])
    if cursor.get("offset") != len(session.data):
        raise wrap({".tag": "incorrect_offset", "correct_offset": len(session.data)}, ["incorrect_offset"])
    return session


def session_append(fake: FakeDropbox, space: str, arg: dict[str, Any], body: bytes) -> None:
    session = _session(fake, arg.get("cursor") or {}, lambda err, tags: route_error(tags, err))
    if session.closed:
        raise route_error(["closed"], {".tag": "closed"})
    _check_hash(arg, body)
    session.data += body
    session.closed = bool(arg.get("close"))
    return None


def session_finish(fake: FakeDropbox, space: str, arg: dict[str, Any], body: bytes) -> dict[str, Any]:
    def wrap(err: dict[str, Any], tags: list[str]) -> Reply:
        return route_error(["lookup_failed", *tags], {".tag": "lookup_failed", "lookup_failed": err})

    cursor = arg.get("cursor") or {}
    session = _session(fake, cursor, wrap)
    _check_hash(arg, body)
    try:
        entry = fake.commit(space, (arg.get("commit") or {}).get("path"), bytes(session.data) + body,
                            arg.get("commit") or {})
    except WriteFailure as exc:
        raise route_error(["path", *exc.tags()], {".tag": "path", "path": exc.error()}) from None
    del fake.sessions[cursor["session_id"]]
    return entry.metadata(tag=False)


def create_folder(fake: FakeDropbox, space: str, arg: dict[str, Any], body: bytes) -> dict[str, Any]:
    try:
        entry = fake.make_folder(space, arg.get("path"))
    except WriteFailure as exc:
        raise route_error(["path", *exc.tags()], {".tag": "path", "path": exc.error()}) from None
    return {"metadata": entry.metadata(tag=False)}


def download(fake: FakeDropbox, space: str, arg: dict[str, Any], body: bytes) -> tuple[dict[str, Any], bytes]:
    entry = fake.lookup(space, arg.get("path"), "path")
    if entry.folder:
        raise lookup_error("path", "not_file")
    return entry.metadata(tag=False), entry.data


def get_metadata(fake: FakeDropbox, space: str, arg: dict[str, Any], body: bytes) -> dict[str, Any]:
    if arg.get("path") == "":
        raise Reply(400, 'Error in call to API function "files/get_metadata": request body: path: '
                         "The root folder is unsupported.")
    return fake.lookup(space, arg.get("path"), "path").metadata()


def delete(fake: FakeDropbox, space: str, arg: dict[str, Any], body: bytes) -> dict[str, Any]:
    entry = fake.lookup(space, arg.get("path"), "path_lookup")
    parent_rev = arg.get("parent_rev")
    if parent_rev is not None and (entry.folder or entry.rev != parent_rev):
        # The reference does not name this error; a write conflict is the closest documented shape.
        raise route_error(["path_write", "conflict", "file"],
                          {".tag": "path_write", "path_write": {".tag": "conflict", "conflict": {".tag": "file"}}})
    entries, lower = fake.entries(space), entry.path_display.lower()
    for path in [p for p in entries if p == lower or p.startswith(lower + "/")]:
        del entries[path]
        fake.links.pop((space, path), None)
    return {"metadata": entry.metadata()}


def list_folder(fake: FakeDropbox, space: str, arg: dict[str, Any], body: bytes) -> dict[str, Any]:
    path = arg.get("path", "")
    entries = fake.entries(space)
    if path != "":
        folder = fake.lookup(space, path, "path")
        if not folder.folder:
            raise lookup_error("path", "not_folder")
        base = folder.path_display.lower()
    else:
        base = ""
    found = []
    for lower in sorted(entries):
        inside = lower == base or lower.startswith(base + "/")
        direct = inside and lower != base and "/" not in lower[len(base) + 1:]
        if (arg.get("recursive") and inside) or direct:
            found.append(entries[lower].metadata())
    cursor = "AAF" + secrets.token_urlsafe(24)
    fake.cursors[cursor] = found
    return _page(fake, cursor, arg.get("limit"))


def list_folder_continue(fake: FakeDropbox, space: str, arg: dict[str, Any], body: bytes) -> dict[str, Any]:
    if arg.get("cursor") not in fake.cursors:
        raise route_error(["reset"], {".tag": "reset"})
    return _page(fake, arg["cursor"], None)


def _page(fake: FakeDropbox, cursor: str, limit: int | None) -> dict[str, Any]:
    remaining = fake.cursors.pop(cursor)
    size = limit or fake.page_size
    page, rest = remaining[:size], remaining[size:]
    next_cursor = "AAF" + secrets.token_urlsafe(24)
    fake.cursors[next_cursor] = rest
    return {"entries": page, "cursor": next_cursor, "has_more": bool(rest)}


def _link_metadata(entry: Entry, url: str) -> dict[str, Any]:
    md = entry.metadata()
    link = {".tag": md[".tag"], "url": url, "name": entry.name, "id": entry.id, "path_lower": md["path_lower"],
            "link_permissions": {
                "can_revoke": True, "resolved_visibility": {".tag": "public"},
                "visibility_policies": [], "can_set_expiry": True, "can_remove_expiry": True,
                "allow_download": True, "can_allow_download": True, "can_disallow_download": False,
                "allow_comments": True, "team_restricts_comments": False,
            }}
    if not entry.folder:
        link.update({k: md[k] for k in ("client_modified", "server_modified", "rev", "size")})
    return link


def create_shared_link(fake: FakeDropbox, space: str, arg: dict[str, Any], body: bytes) -> dict[str, Any]:
    entry = fake.lookup(space, arg.get("path"), "path")
    key = (space, entry.path_display.lower())
    if key in fake.links:
        raise route_error(["shared_link_already_exists", "metadata"], {
            ".tag": "shared_link_already_exists",
            "shared_link_already_exists": {".tag": "metadata", "metadata": fake.links[key]},
        })
    kind = "fo" if entry.folder else "fi"
    url = f"https://www.dropbox.com/scl/{kind}/{secrets.token_hex(12)}/{entry.name}?rlkey={secrets.token_hex(8)}&dl=0"
    fake.links[key] = _link_metadata(entry, url)
    return fake.links[key]


def list_shared_links(fake: FakeDropbox, space: str, arg: dict[str, Any], body: bytes) -> dict[str, Any]:
    path = arg.get("path")
    links = [md for (sp, p), md in fake.links.items() if sp == space and (path is None or p == path.lower())]
    return {"links": links, "has_more": False}


def revoke_shared_link(fake: FakeDropbox, space: str, arg: dict[str, Any], body: bytes) -> None:
    url = arg.get("url", "")
    for key, md in list(fake.links.items()):
        if key[0] == space and md["url"] == url:
            del fake.links[key]
            return None
    raise route_error(["shared_link_not_found"], {".tag": "shared_link_not_found"})


ROUTES = {
    "/2/files/upload": upload,
    "/2/files/upload_session/start": session_start,
    "/2/files/upload_session/append_v2": session_append,
    "/2/files/upload_session/finish": session_finish,
    "/2/files/create_folder_v2": create_folder,
    "/2/files/download": download,
    "/2/files/get_metadata": get_metadata,
    "/2/files/delete_v2": delete,
    "/2/files/list_folder": list_folder,
    "/2/files/list_folder/continue": list_folder_continue,
    "/2/sharing/create_shared_link_with_settings": create_shared_link,
    "/2/sharing/list_shared_links": list_shared_links,
    "/2/sharing/revoke_shared_link": revoke_shared_link,
}
CONTENT_ROUTES = {"/2/files/upload", "/2/files/upload_session/start", "/2/files/upload_session/append_v2",
                  "/2/files/upload_session/finish", "/2/files/download"}

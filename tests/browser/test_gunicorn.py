"""The console as production serves it: gunicorn with DEBUG off and WEDBACKUP_PRODUCTION on, static files collected
(compressed, hashed names) and served by WhiteNoise; headless Chromium logs in and sees the charts drawn."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection
from playwright.sync_api import sync_playwright

from backups.snapshots import fleet_health_refresh
from tests.factories import make_asset, make_provider, make_wedding

from .conftest import ARGS, CHROMIUM

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "pw-gunicorn-12345"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def production(tmp_path):
    db = connection.settings_dict
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "wedbackup.settings", "DEBUG": "0", "WEDBACKUP_PRODUCTION": "1",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": django_settings.RQ_QUEUES["default"]["URL"], "WEDBACKUP_VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": "gunicorn-test-" + "x" * 40,
        "WEDBACKUP_CREDENTIALS_KEY": ",".join(django_settings.CREDENTIALS_KEYS),
        "WEDBACKUP_ENCRYPTION_KEY": django_settings.ENCRYPTION_MASTER_KEY,
        # plain http on loopback here; behind the TLS proxy these stay on (the defaults in production)
        "SECURE_SSL_REDIRECT": "0", "SESSION_COOKIE_SECURE": "0", "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
    }
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                   check=True)
    port = free_port()
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"), "wedbackup.wsgi:application",
                               "--bind", f"127.0.0.1:{port}", "--workers", "2"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    yield f"http://127.0.0.1:{port}", tmp_path / "var" / "static"
    server.terminate()
    server.wait(timeout=15)
    log.close()


def test_gunicorn_serves_the_console_with_charts_and_hashed_compressed_static_files(production, django_user_model,
                                                                                    tmp_path):
    base, static_root = production
    django_user_model.objects.create_user("ops", "ops@example.com", PASSWORD, is_staff=True, is_superuser=True)
    make_provider(name="nas-0", kind="watched_folder", region="us-east-1", bucket=str(tmp_path / "nas"))
    make_asset(make_wedding(), size=10)
    fleet_health_refresh()
    assert list(static_root.glob("plotly/plotly.min.*.js.gz")) or list(static_root.glob("plotly/plotly.min.*.js.br"))
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(base_url=base)
            failed = []
            page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
            page.goto("/")
            page.fill("input[name=username]", "ops")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/")
            page.wait_for_selector("[data-chart] .main-svg")
            html = page.content()
            assert "/static/plotly/plotly.min." in html and "/static/console/console." in html
            script = page.locator("script[src*='plotly.min.']").get_attribute("src")
            assert script != "/static/plotly/plotly.min.js"  # a hashed name, cached forever
            response = page.request.get(script, headers={"Accept-Encoding": "gzip"})
            assert response.status == 200 and "immutable" in response.headers.get("cache-control", "")
            assert failed == []
            browser.close()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)

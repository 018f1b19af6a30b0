"""Static files in production: with DEBUG off Django itself serves none, so gunicorn answers them via WhiteNoise.

Without this the topology page of the docker stack would load with no Cytoscape.js and no htmx.
"""

from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client, override_settings


@pytest.mark.django_db
def test_collected_ui_assets_are_served_with_debug_off(tmp_path: Path):
    with override_settings(DEBUG=False, STATIC_ROOT=tmp_path, ALLOWED_HOSTS=["testserver"]):
        call_command("collectstatic", interactive=False, verbosity=0)
        assert (tmp_path / "web" / "vendor" / "cytoscape.min.js").is_file()
        client = Client()  # its handler loads the middleware now, so WhiteNoise indexes this STATIC_ROOT
        for name in ("web/vendor/cytoscape.min.js", "web/vendor/htmx.min.js"):
            response = client.get(f"/static/{name}", secure=True)
            assert response.status_code == 200, name
            body = b"".join(response.streaming_content)
            assert body == (tmp_path / name).read_bytes()
        assert client.get("/static/web/vendor/missing.js", secure=True).status_code == 404

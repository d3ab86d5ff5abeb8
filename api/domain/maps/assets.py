"""What the pages load, served by the service itself: ``/static`` and the ``/schema`` page.

Police networks are closed, so no page may link a CDN. ``/static`` serves
``api/static`` (the map client under ``maps/``, the vendored kit under ``vendor/``,
listed with versions and licences in ``vendor/VENDORED.md``); the OpenAPI page at
``/schema`` is Redoc loaded from there, without Google Fonts or a remote favicon. Pages
are gzip-compressed when the browser accepts it (:data:`COMPRESSION`): the deck.gl
bundle is 2.1 MB as a file and 0.58 MB on the wire.

Registered by the app assembly (``api/app.py``): ``*ASSET_ROUTES`` among the route
handlers, ``render_plugins=SCHEMA_PAGES`` in the ``OpenAPIConfig``, and
``compression_config=COMPRESSION``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

from litestar.config.compression import CompressionConfig
from litestar.openapi.plugins import RedocRenderPlugin, YamlRenderPlugin
from litestar.static_files import create_static_files_router

from api.hardening import CSP_KEY, NO_COMPRESSION
from api.wire import GZIP_LEVEL, MINIMUM_SIZE

STATIC_URL = "/static"
STATIC_DIR = Path(str(files("api") / "static"))
"""``api/static`` of the installed package (shipped as package data)."""
REDOC_JS = f"{STATIC_URL}/vendor/redoc/redoc.standalone.js"
NO_FAVICON = "<link rel='icon' href='data:,'>"
"""An empty icon: browsers would otherwise ask for ``/favicon.ico``, pages for a CDN's."""

ASSET_ROUTES = [create_static_files_router(path=STATIC_URL, directories=[STATIC_DIR],
                                           include_in_schema=False)]
"""``/static/...``: the files of ``api/static``."""

LOCAL_ONLY = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
              "script-src 'self' {script}; worker-src 'self' blob:; connect-src 'self'; "
              "object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
"""Content Security Policy of the ``/schema`` page: nothing from another host; of inline
scripts only Redoc's start-up (by its hash)."""
_INLINE_SCRIPT = re.compile(rb"<script type='text/javascript'>(.*?)</script>", re.DOTALL)


class OfflineRedoc(RedocRenderPlugin):
    """Redoc with a Content Security Policy that keeps the page on this service: Redoc's
    side menu links a logo on its CDN whatever its options, and the browser now refuses
    it without asking the network (Redoc then leaves the image out). The policy goes in
    the page and in its header (:data:`api.hardening.CSP_KEY`)."""

    def render(self, request: Any, openapi_schema: dict[str, Any]) -> bytes:
        page = super().render(request, openapi_schema)
        hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(m).digest()).decode()}'"
                          for m in _INLINE_SCRIPT.findall(page))
        policy = LOCAL_ONLY.format(script=hashes)
        request.scope[CSP_KEY] = policy
        in_page = policy.replace("; frame-ancestors 'none'", "")  # header-only directive
        meta = f'<meta http-equiv="Content-Security-Policy" content="{in_page}">'.encode()
        return page.replace(b"<head>", b"<head>" + meta, 1)


SCHEMA_PAGES = [OfflineRedoc(js_url=REDOC_JS, google_fonts=False, path=["/", "/redoc"], favicon=NO_FAVICON),
                YamlRenderPlugin()]
"""``/schema`` (and ``/schema/redoc``): Redoc from ``/static``; ``/schema/openapi.yaml``
(``/schema/openapi.json`` is always served)."""

COMPRESSION = CompressionConfig(backend="gzip", minimum_size=MINIMUM_SIZE, gzip_compress_level=GZIP_LEVEL,
                                exclude_opt_key=NO_COMPRESSION)
"""gzip for answers over 1 kB (pages, bundles, large JSON); level 6: most of level 9's
saving at a third of its CPU on the shared cores."""

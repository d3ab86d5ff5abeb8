"""What the pages load, served by the service itself: ``/static`` and the ``/schema`` page.

Police networks are closed, so no page may link a CDN. ``/static`` serves
``api/static`` (the map client under ``maps/``, the vendored kit under ``vendor/``,
listed with versions and licences in ``vendor/VENDORED.md``); the OpenAPI page at
``/schema`` is Redoc loaded from there, without Google Fonts or a remote favicon. Pages
are gzip-compressed when the browser accepts it (:data:`COMPRESSION`). The files of
``/static`` are gzipped once each (:class:`StaticAssets`), not per request on the loop
that takes calls: the deck.gl bundle is 2.1 MB as a file and 0.5 MB on the wire, and
gzipping it was 56 ms of that loop for every dashboard opened.

Registered by the app assembly (``api/app.py``): ``*ASSET_ROUTES`` among the route
handlers, ``render_plugins=SCHEMA_PAGES`` in the ``OpenAPIConfig``, and
``compression_config=COMPRESSION``.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

import anyio
from litestar import Request, Response, route
from litestar.config.compression import CompressionConfig
from litestar.enums import HttpMethod
from litestar.openapi.plugins import RedocRenderPlugin, YamlRenderPlugin
from litestar.params import PathParameter

from api.bodies import BODY_OPT, GZIP_LEVEL, MINIMUM_SIZE, gzipped, kept_response
from api.errors import NotFoundError
from api.hardening import CSP_KEY, NO_COMPRESSION

STATIC_URL = "/static"
STATIC_DIR = Path(str(files("api") / "static"))
"""``api/static`` of the installed package (shipped as package data)."""
REDOC_JS = f"{STATIC_URL}/vendor/redoc/redoc.standalone.js"
NO_FAVICON = "<link rel='icon' href='data:,'>"
"""An empty icon: browsers would otherwise ask for ``/favicon.ico``, pages for a CDN's."""



@dataclass(frozen=True, slots=True)
class Asset:
    """One file of ``/static`` as served: its bytes, the same gzipped (``None`` when gzip
    saves too little, as for images), its media type and ETag."""

    raw: bytes
    gzipped: bytes | None
    media_type: str
    etag: str

    @classmethod
    def read(cls, path: Path) -> Asset:
        raw = path.read_bytes()
        packed = gzipped(raw, 9) if len(raw) >= MINIMUM_SIZE else None
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return cls(raw, packed if packed is not None and len(packed) < 0.9 * len(raw) else None,
                   media_type, f'"{hashlib.sha256(raw).hexdigest()[:32]}"')


class StaticAssets:
    """The files under a directory, each read and gzipped once (level 9, in a thread:
    zlib lets the loop run meanwhile) when first asked for, then kept until the file
    changes (a ``stat`` per request: an edited script is served at once); only files
    that exist there when first listed are served, so no path can leave the directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._names: dict[str, Path] | None = None
        self._kept: dict[str, tuple[tuple[int, int], Asset]] = {}

    async def get(self, name: str) -> Asset:
        """The asset at ``name`` (relative, ``/`` separated); 404 for any other name."""
        if self._names is None:
            self._names = {p.relative_to(self.root).as_posix(): p
                           for p in self.root.rglob("*") if p.is_file()}
        path = self._names.get(name)
        if path is None:
            raise NotFoundError(f"no file {STATIC_URL}/{name}")
        try:
            status = path.stat()
        except FileNotFoundError as exc:
            raise NotFoundError(f"no file {STATIC_URL}/{name}") from exc
        stamp = (status.st_mtime_ns, status.st_size)
        kept = self._kept.get(name)
        if kept is None or kept[0] != stamp:
            kept = self._kept[name] = (stamp, await anyio.to_thread.run_sync(Asset.read, path))
        return kept[1]


ASSETS = StaticAssets(STATIC_DIR)


@route(f"{STATIC_URL}/{{name:path}}", http_method=[HttpMethod.GET, HttpMethod.HEAD],
       include_in_schema=False, opt=BODY_OPT)
async def static_asset(name: Annotated[str, PathParameter()], request: Request[Any, Any, Any]
                       ) -> Response[bytes]:
    """A file of ``api/static``, gzipped when the browser takes gzip, revalidated by its
    ETag (``no-cache``: an upgraded file is fetched at once, an unchanged one is a 304);
    ``HEAD`` answers the same headers without the body."""
    asset = await ASSETS.get(name.lstrip("/"))
    return kept_response(request, asset.raw, asset.gzipped, media_type=asset.media_type,
                         etag=asset.etag, headers={"Cache-Control": "no-cache"})


ASSET_ROUTES = [static_asset]
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

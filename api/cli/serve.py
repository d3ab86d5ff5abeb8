"""``safecity serve``: run the HTTP service with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Start the service (OpenAPI at /schema, JSON at /schema/openapi.json)."""
    import uvicorn  # noqa: PLC0415

    uvicorn.run("api.app:app_factory", factory=True, host=host, port=port, workers=workers,
                log_level=log_level)

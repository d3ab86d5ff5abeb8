"""``safecity serve``: run the HTTP service with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (more than one needs "
                                                     "REDIS_URL)")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
    allow_memory_channels: Annotated[bool, typer.Option(
        "--allow-memory-channels",
        help="Run several workers without REDIS_URL anyway: each worker's feeds then carry "
             "only the calls that worker took")] = False,
) -> None:
    """Start the service (OpenAPI at /schema, JSON at /schema/openapi.json)."""
    from api.settings import read_settings  # noqa: PLC0415

    redis_url = read_settings().redis_url
    if workers > 1 and redis_url is None:
        if not allow_memory_channels:
            raise typer.BadParameter(
                f"{workers} workers need REDIS_URL (e.g. redis://127.0.0.1:6379/0): without it "
                "each worker has its own in-memory channels, so a call taken by one worker never "
                "reaches a feed subscribed on another. Set REDIS_URL, or pass "
                "--allow-memory-channels to accept that.", param_hint="--workers")
        typer.echo(f"warning: {workers} workers with in-memory channels (no REDIS_URL): live feeds "
                   "only carry the calls taken by the worker they are connected to", err=True)
    import uvicorn  # noqa: PLC0415

    uvicorn.run("api.app:app_factory", factory=True, host=host, port=port, workers=workers,
                log_level=log_level)

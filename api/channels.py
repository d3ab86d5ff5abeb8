"""Live fan-out of call events: one channel per area, in memory or through Redis.

Channel names are ``<level>:<code>`` for station, tehsil, district, region and province.
An event is published to every channel on its call's path (and, for a transfer, on the
path it left), so a control room at any level sees what happens beneath it. In memory by
default (one process); with ``REDIS_URL`` set, Redis pub/sub carries events between
workers. Delivery is best effort: the database holds every event, and a subscriber that
reconnects with ``Last-Event-ID`` is replayed from there.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from litestar.channels import ChannelsBackend, ChannelsPlugin
from litestar.channels.backends.memory import MemoryChannelsBackend

FEED_LEVELS = ("station", "tehsil", "district", "region", "province")

log = logging.getLogger(__name__)


def channel_name(level: str, code: str) -> str:
    """The channel of one area."""
    return f"{level}:{code}"


def path_channels(*paths: Mapping[str, str | None]) -> list[str]:
    """Every channel on the given area paths, each once."""
    names: dict[str, None] = {}
    for path in paths:
        for level in FEED_LEVELS:
            code = path.get(level)
            if code:
                names[channel_name(level, code)] = None
    return list(names)


def build_channels_plugin(redis_url: str | None) -> ChannelsPlugin:
    """Redis pub/sub when ``redis_url`` is given, else an in-process backend.

    The app enters it in its own lifespan (it is not registered as a plugin), so the bus is
    up before the jobs that publish start and goes down after they stop.
    """
    backend: ChannelsBackend
    if redis_url:
        from litestar.channels.backends.redis import RedisChannelsPubSubBackend  # noqa: PLC0415
        from redis.asyncio import Redis  # noqa: PLC0415

        backend = RedisChannelsPubSubBackend(redis=Redis.from_url(redis_url),
                                             key_prefix="SAFECITY_CHANNELS")
    else:
        backend = MemoryChannelsBackend()
    return ChannelsPlugin(backend=backend, arbitrary_channels_allowed=True,
                          subscriber_max_backlog=10_000, subscriber_backlog_strategy="dropleft")


class FeedPublisher:
    """Publishes encoded events; a broken bus is logged, never fails a stored call."""

    def __init__(self, plugin: ChannelsPlugin) -> None:
        self.plugin = plugin
        self.failures = 0

    async def publish(self, payload: bytes, channels: Iterable[str]) -> bool:
        """Send ``payload`` to ``channels``; ``False`` (and a log line) if the bus is down."""
        names = list(channels)
        if not names:
            return True
        try:
            await self.plugin.wait_published(payload, names)
        except Exception:  # the event is durable in the database and replayable
            self.failures += 1
            log.exception("live delivery failed for %s; subscribers will replay it", names)
            return False
        return True

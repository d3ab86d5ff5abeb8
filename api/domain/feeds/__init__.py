"""Live feeds of call events per area (SSE and WebSocket), replayable from the database.

Public to other packages: ``services`` (:class:`~api.domain.feeds.services.FeedService`,
which the alert feeds extend); ``controllers`` is its own. The HTTP side every feed
shares is :mod:`api.streams`.
"""

"""Hot-spot and response-time analytics over the stored call history, served per H3 cell.

Public to other packages: ``schemas`` (the query, its HTTP parameters, the result) and
``services`` (:class:`~api.domain.analytics.services.AnalyticsService`, the call-history
repository, the parsers of times and categories); ``formats`` and ``controllers`` are its own.
"""

"""Safe City expansion plans as background jobs: ``/api/v1/plans`` and ``/maps/plans/{id}``.

:mod:`~api.domain.plans.planner` is the planning itself (options, stages, summary), shared
with ``safecity plan sites``; it knows nothing of HTTP or the database.
"""

"""Safe City expansion plans as background jobs: ``/api/v1/plans`` (their map page is
:mod:`api.domain.maps`).

:mod:`~api.domain.plans.planner` is the planning itself (options, stages, summary), shared
with ``safecity plan sites``; it knows nothing of HTTP or the database. Public to other
packages: ``schemas`` and ``services``; ``planner`` and ``controllers`` are its own.
"""

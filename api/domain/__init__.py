"""One sub-package per resource: schemas (msgspec), services (no HTTP), controllers.

**What another package may use.** A package's ``schemas`` and ``services`` modules (and
the calls package's ``wire``, the call's one wire form) are public to the other packages
here; every other module of it (``controllers``, and
``engine``, ``rules``, ``feeds``, ``intake``, ``lifecycle``, ``categories``, ``planner``,
``formats``, ``plans``, …) is its own. Only the assembly outside ``api/domain``
(:mod:`api.app`, :mod:`api.container`, :mod:`api.deps`) and the CLI reach those. What
several packages share lives beside them in :mod:`api` (``areas``, ``audit``, ``auth``,
``types``, ``streams``, ``channels``, ``errors``, ``pagination``, ``db.transactions``).
Package dependencies run one way: calls → stations; feeds → calls, stations; alerts →
calls, feeds, analytics; plans → analytics; maps → analytics, plans.
"""

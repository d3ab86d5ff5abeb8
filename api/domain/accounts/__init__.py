"""Web sign-in: accounts, DB-backed browser sessions, CSRF tokens and the throttle of
failed sign-ins; the ``/login`` and ``/logout`` pages and the ``page_principal``
dependency of every server-rendered page (``docs/web.md``).

Public to other packages: ``services`` (the account service, :class:`PageUser`, the
session cookie's name, the page rendering helper).
"""

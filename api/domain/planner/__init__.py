"""Planner pages (``/plans``): the plans in scope, running a plan, its progress, its
summary, its coverage curve and a link to its map — over the plans API's own service
(``docs/web.md``). Nothing public to other packages."""

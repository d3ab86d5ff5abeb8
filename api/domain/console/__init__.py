"""The SHO console (``/console``): a station's open calls, live, with the lifecycle
buttons, the callers' locations on a small map and who is on duty (``docs/web.md``).

A page over the other packages' services (calls, stations, feeds, maps, accounts): no
service of its own, nothing public to other packages.
"""

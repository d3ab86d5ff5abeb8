"""Helpline-15 calls: intake, routing to the on-duty SHO, lifecycle, reads, audit.

Public to other packages: ``schemas`` and ``services`` (the call service, the wire form of
a feed message); ``intake``, ``lifecycle``, ``categories`` and ``controllers`` are its own.
"""

"""Helpline-15 calls: intake, routing to the on-duty SHO, lifecycle, reads, audit.

Public to other packages: ``schemas``, ``services`` (the call service) and ``wire`` (the
call's one wire form and the feed message built from it); ``intake``, ``lifecycle``,
``categories`` and ``controllers`` are its own.
"""

"""Stateless routing for other systems: one point or a batch, every decision audited.

Public to other packages: ``schemas`` and ``services``; ``controllers`` is its own.
"""

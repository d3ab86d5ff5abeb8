"""Response-time statistics of an area: the numbers senior officers review.

Public to other packages: ``services``; ``controllers`` is its own.
"""

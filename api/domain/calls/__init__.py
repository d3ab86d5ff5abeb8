"""Helpline-15 calls: intake, routing to the on-duty SHO, lifecycle, reads, audit."""

"""One sub-package per resource: schemas (msgspec), services (no HTTP), controllers."""

"""The front door: ``/`` (a landing page), ``/maps`` (the map pages' index), ``/docs``."""

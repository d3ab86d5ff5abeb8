"""``python -m api.cli`` runs the same CLI as the ``safecity`` script."""

from api.cli import main

main()

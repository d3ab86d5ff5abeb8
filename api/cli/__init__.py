"""The ``safecity`` command line: one Typer app with a sub-app per area.

Each area's commands live in their own module here and import heavy libraries only
inside the command bodies, so ``safecity --help`` stays fast.
"""

from __future__ import annotations

import typer

from api.cli import jurisdictions as jurisdictions_cli
from api.cli import route as route_cli
from api.cli import serve as serve_cli

app = typer.Typer(
    name="safecity",
    help="Geospatial crime intelligence for Punjab Police.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(jurisdictions_cli.app, name="jurisdictions")
app.command("route")(route_cli.route)
app.command("serve")(serve_cli.serve)
app.add_typer(__import__("api.cli.synth", fromlist=["app"]).app, name="synth")
app.add_typer(__import__("api.cli.hotspots", fromlist=["app"]).app, name="hotspots")
app.add_typer(__import__("api.cli.db", fromlist=["app"]).app, name="db")
jurisdictions_cli.app.command("load")(__import__("api.cli.db", fromlist=["load"]).load)
app.add_typer(__import__("api.cli.roster", fromlist=["app"]).app, name="roster")
app.command("token")(__import__("api.cli.token", fromlist=["token"]).token)
app.add_typer(__import__("api.cli.plan", fromlist=["app"]).app, name="plan")
app.add_typer(__import__("api.cli.stats", fromlist=["app"]).app, name="stats")
app.add_typer(__import__("api.cli.alerts", fromlist=["app"]).app, name="alerts")
app.add_typer(__import__("api.cli.users", fromlist=["app"]).app, name="users")
app.command("trends")(__import__("api.cli.trends", fromlist=["trends"]).trends)
app.add_typer(__import__("api.cli.forecast", fromlist=["app"]).app, name="forecast")
app.add_typer(__import__("api.cli.dashboard", fromlist=["app"]).app, name="dashboard")
# further areas register here, one line each (keep this comment last)


def main() -> None:
    """Console-script entry point."""
    app()

"""Live feeds of call events per area (SSE and WebSocket), replayable from the database."""

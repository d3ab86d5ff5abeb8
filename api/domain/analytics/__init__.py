"""Hot-spot and response-time analytics over the stored call history, served per H3 cell."""

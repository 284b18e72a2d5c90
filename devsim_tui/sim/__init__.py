"""The simulation engine: pure, deterministic, vectorised. Never imports the UI."""

"""Profiles and other user-written YAML: schema, loading, validation. Never imports the UI."""

"""The trace store: runs, steps, annotations and attributions in SQLite."""

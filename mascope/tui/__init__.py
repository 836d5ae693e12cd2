"""The trace-inspection terminal UI (Textual)."""

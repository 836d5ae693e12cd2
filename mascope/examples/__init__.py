"""Example teams shipped with mascope (the repository's examples/ points here)."""

"""Agents: roles, tools, verifiers and test-time strategies (built on mascope.models)."""

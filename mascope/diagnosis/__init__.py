"""Diagnosis: rule detectors, the LLM judge, attribution, batch jobs and metrics."""

"""Failure taxonomies as data: MAST built in, custom ones from YAML."""

"""The package's version, in a module of its own so that code deep in the package
can name it without importing the package root (and every import it makes)."""

__version__ = "0.1.0"

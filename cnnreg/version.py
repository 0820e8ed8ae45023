"""cnnreg's version, in a module of its own so that every layer can read it without importing
the public API (:mod:`cnnreg`)."""

__version__ = "0.1.0"

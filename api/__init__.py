"""Amend: a self-hosted user-account update service."""

__version__ = "0.1.0"

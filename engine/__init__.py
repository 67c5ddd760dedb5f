"""Segue engine: the resident process that keeps a generative audio backend warm."""

__version__ = "0.1.0"

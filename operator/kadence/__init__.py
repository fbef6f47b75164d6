"""Kadence: the whole machine-learning loop as Kubernetes resources."""

__version__ = "0.1.0"

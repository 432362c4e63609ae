"""Helm charts: rendering with the real helm, Helm repositories, syncs of charts."""

"""Semantic similarity metric module."""

"""Shipped as package data so the evaluate module files install with llmplay."""

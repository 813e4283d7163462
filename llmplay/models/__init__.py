"""Model catalog, weight sources, the converted-model cache and the per-process loader."""

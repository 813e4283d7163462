"""What a model is: the catalog, weight sources, the converted-model cache and the loader, the registry of
trained versions (``registry``) and model lines with their aliases (``lines``), served by name (``trained``).

Everything that uses models sits above it: it must not know the engine, training, the loop, evaluation or the
UI (tests/test_architecture.py checks it). Training registers versions and the loop moves line aliases through
the functions here.
"""

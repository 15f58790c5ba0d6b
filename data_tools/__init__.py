"""Dataset tools: build and inspect glyph stores (the HDF5 format in store.py)."""

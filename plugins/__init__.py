"""The built-in plugins: one module per component family, each an entry point of group
``wav2pix_zoo`` declared in pyproject.toml (the same road third-party plugins take)."""

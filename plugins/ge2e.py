"""Resemblyzer's pretrained GE2E speaker encoder as an encoder plugin (issue 15)."""

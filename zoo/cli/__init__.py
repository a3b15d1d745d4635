"""The command line's half of each command: options, progress bars and tables.

The only place in the project that prints. Each module serves one command of ``main.py``.
"""

"""The dispatcher rule as code: the AST pins (pins.py) and what they read (tree.py)."""

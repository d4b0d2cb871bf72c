"""A stand-in search tool: prints the query it was given."""

import sys

print(f"searching for: {' '.join(sys.argv[1:])}")

"""The benchmark suite: ``scripts/bench`` (README "Benchmarks").

Starts its own PostgreSQL, seeds a fleet at the size asked for with set-based SQL, and prints
each figure of issue 11's table next to its baseline measured in the same run. Not console code:
like tests/, it writes rows by hand and stands in for the machines behind the backends, and the
console never imports it.
"""

import pytest

# The shared helpers assert, too: rewrite them like test modules so a failure shows its values.
pytest.register_assert_rewrite("tests.support")

"""What the tests share besides fixtures: the helpers more than one test module (or conftest.py's
fixtures) uses. conftest.py holds the fixtures themselves; no test module imports another."""

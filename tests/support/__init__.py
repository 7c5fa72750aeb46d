"""What the tests share besides fixtures: callers, HTTP call wrappers, sample files, rows, test steps and the real
`scopix` command. Fixtures stay in conftest.py, which imports from here; nothing here imports a conftest or a test
module."""

"""Test tooling shared by the tests and the benchmarks (which do not import the tests): synthetic photos, tiny
randomly initialised vision models, and an OTLP collector. Not part of the installed service."""

"""Phase-retrieval benchmarks (not part of the test suite); see README.md."""

"""Reference implementations the benchmarks compare the project against (not pipeline stages)."""

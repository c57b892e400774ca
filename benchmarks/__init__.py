"""Speed and quality benchmarks; see benchmarks/README.md."""

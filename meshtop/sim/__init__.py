"""The simulated mesh: Bookinfo or a generated mesh behind all three source protocols,
and as Istio metrics over HTTP. The embedded default for demos, tests and benchmarks."""

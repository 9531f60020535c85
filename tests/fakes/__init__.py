"""In-process fakes of the platforms' HTTP APIs, served on loopback for tests and benchmarks."""

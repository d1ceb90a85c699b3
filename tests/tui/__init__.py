"""Console tests: Pilot-driven behaviour and SVG snapshots."""

"""The Textual console: live views over mesh snapshots.
Nothing outside this package imports Textual."""

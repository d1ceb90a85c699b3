"""meshtop tests."""

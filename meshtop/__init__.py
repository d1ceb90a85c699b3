"""meshtop: a terminal console for service meshes."""

__version__ = "0.1.0"

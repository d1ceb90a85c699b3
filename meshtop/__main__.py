"""`python -m meshtop`: the same as the `meshtop` command."""

from meshtop.cli import main

main()

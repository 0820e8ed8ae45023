"""``python -m cnnreg`` runs the command-line interface."""

from cnnreg.cli import main

if __name__ == "__main__":
    main()

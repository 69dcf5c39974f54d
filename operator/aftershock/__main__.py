"""`python -m aftershock` is the same as the `aftershock` command."""

from aftershock.cli import main

if __name__ == "__main__":
    main()

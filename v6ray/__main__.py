"""``python -m v6ray`` is the ``v6ray`` command."""

from v6ray.cli.main import run

if __name__ == "__main__":
    run()

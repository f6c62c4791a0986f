"""``python -m explorer serve path/to/file.py:make_model``: the app on your own model."""

from explorer.io.serve import main

if __name__ == "__main__":
    raise SystemExit(main())

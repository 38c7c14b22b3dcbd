"""`python -m smartcity.build_native`: compile the rule engine's hot modules (`native.py`)."""

from smartcity.native import main

if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmarks of the NGSI-LD broker: run with `make bench` (`python -m bench --help`)."""

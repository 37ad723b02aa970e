"""六通 Liutong — one member identity across every business of a tourism group."""

__version__ = "0.1.0"

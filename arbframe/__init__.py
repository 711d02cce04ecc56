"""arbframe: a declarative plugin framework for cross-exchange crypto arbitrage."""

__version__ = "0.1.0"

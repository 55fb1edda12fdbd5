"""rdplab: a lab that reproduces Remote Desktop connection failures and validates their fixes."""

__version__ = "0.1.0"

"""taskd: an asynchronous task queue server speaking the Dragon REST API."""

__version__ = "0.1.0"

"""syncagent: keep a local folder and a cloud folder identical."""

__version__ = "0.1.0"

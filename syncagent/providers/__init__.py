"""Providers: each maps one storage service onto the small interface of `base`."""

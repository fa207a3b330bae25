"""The daemon: watcher, scheduler, status, service install."""

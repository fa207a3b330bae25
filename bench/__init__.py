"""Benchmarks (not timed tests): run side by side with rsync, rclone and unison."""

"""Subcommands of `find-ros`; see find_ros.cli."""

# The README's two commands. Both set the environment up on first use (scripts/setup_env.sh: apt
# packages, .venv with CPU torch, ROS 2 wheels, find_ros_msgs, find_ros) and re-run fast afterwards.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup test demo clean

setup:
	@bash scripts/setup_env.sh

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/find-ros demo

clean:
	rm -rf build .pytest_cache

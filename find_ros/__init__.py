"""find_ros: FIND (Interfacing Foundation Models' Embeddings) for ROS 2 robots.

The model (``find_ros.model``) imports only torch and transformers; ROS 2 (``find_ros.nodes``) and
nerfstudio (``find_ros.fields``) are surfaces on top of it and are imported only where used.
"""

__version__ = "0.1.0"

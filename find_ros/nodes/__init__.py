"""ROS 2 surfaces of find_ros: message conversions and rclpy nodes (thin: they call find_ros.model)."""

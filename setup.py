"""ament_python package find_ros. Builds with colcon on a ROS 2 install, or `pip install -e .`."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "find_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    description="FIND (Interfacing Foundation Models' Embeddings) for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["find_ros", "find_ros.*", "training", "training.*"]),
    include_package_data=True,
    # The shipped default model travels with the package (also for colcon and non-editable installs).
    package_data={"find_ros": ["default_model/*.json", "default_model/*.safetensors", "default_model/*.md",
                               "default_model/vision/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "find-ros = find_ros.cli:main",
            "grounding_node = find_ros.nodes.grounding_node:main",
            "localization_node = find_ros.nodes.localization_node:main",
        ],
        "nerfstudio.method_configs": ["find-field = find_ros.fields.method:find_field"],
    },
)

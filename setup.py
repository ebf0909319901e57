"""ament_python package find_ros. Builds with colcon on a ROS 2 install, or `pip install -e .`.

setup.cfg sends installed scripts to lib/find_ros, where `ros2 run find_ros <executable>` looks for
the node executables; the user's command `find-ros` is moved on to bin, which the workspace's
setup.bash puts on PATH.
"""

import shutil
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.develop import develop
from setuptools.command.install_scripts import install_scripts

PACKAGE = "find_ros"
USER_COMMANDS = ("find-ros",)


class InstallScripts(install_scripts):
    """install_scripts that puts USER_COMMANDS in <prefix>/bin instead of <prefix>/lib/find_ros."""

    def run(self) -> None:
        super().run()
        bin_dir = Path(self.get_finalized_command("install").install_data) / "bin"
        for index, path in enumerate(self.outfiles):
            if Path(path).name in USER_COMMANDS and Path(path).parent != bin_dir:
                bin_dir.mkdir(parents=True, exist_ok=True)
                target = bin_dir / Path(path).name
                shutil.move(path, target)
                self.outfiles[index] = str(target)  # what --record lists, so uninstalls find it



class Develop(develop):
    """develop (colcon --symlink-install, setuptools<80) with the same split as InstallScripts."""

    def write_script(self, script_name, contents, mode="t", blockers=()):  # noqa: ANN001, ANN201 - setuptools' signature
        if script_name not in USER_COMMANDS:
            return super().write_script(script_name, contents, mode, blockers)
        script_dir = self.script_dir
        self.script_dir = str(Path(script_dir).parents[1] / "bin")  # <prefix>/lib/find_ros -> <prefix>/bin
        try:
            return super().write_script(script_name, contents, mode, blockers)
        finally:
            self.script_dir = script_dir


setup(
    name=PACKAGE,
    version="0.1.0",
    description="FIND (Interfacing Foundation Models' Embeddings) for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    # The shipped default model travels with the package (also for colcon and non-editable installs):
    # its folders are listed as (namespace) packages so that their files are package data.
    packages=find_packages(include=["find_ros", "find_ros.*", "training", "training.*"])
    + ["find_ros.default_model", "find_ros.default_model.vision"],
    package_data={
        "find_ros.default_model": ["*.json", "*.safetensors", "*.md"],
        "find_ros.default_model.vision": ["*.json", "*.safetensors"],
    },
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml") + glob("config/*.xml")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    cmdclass={"install_scripts": InstallScripts, "develop": Develop},
    entry_points={
        "console_scripts": [
            "find-ros = find_ros.cli:main",
            "grounding_node = find_ros.nodes.grounding_node:main",
            "localization_node = find_ros.nodes.localization_node:main",
        ],
        "nerfstudio.method_configs": ["find-field = find_ros.fields.method:find_field"],
    },
)

from setuptools import find_packages, setup

package_name = "storefuse_nodes"

# Every node is installed where `ros2 launch` looks for it: lib/storefuse_nodes/<exec>.
NODES = {
    "gate_reader": "gate_reader",
    "shelf_scale": "shelf_scale",
    "receipt": "receipt",
    "store_sim": "store_sim",
    "recorder": "recorder",
    "store_description": "store_description",
    "cart_localizer": "cart_localizer",
    "camera": "camera",
    "depth_camera": "depth_camera",
    "player": "player",
}

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="storefuse maintainers",
    maintainer_email="maintainers@storefuse.dev",
    description="storefuse rclpy nodes",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [f"{exe} = {package_name}.{mod}:main" for exe, mod in NODES.items()],
    },
)

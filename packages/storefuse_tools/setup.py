from setuptools import find_packages, setup

package_name = "storefuse_tools"

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
    description="storefuse command line",
    license="Apache-2.0",
    entry_points={"console_scripts": ["storefuse = storefuse_tools.cli:main"]},
)

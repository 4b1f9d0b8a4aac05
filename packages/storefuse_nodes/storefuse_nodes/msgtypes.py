"""Resolve 'pkg/msg/Type' names to rclpy classes (rosidl_runtime_py is not on every machine)."""
import importlib


def message_class(name: str):
    pkg, kind, cls = name.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), cls)

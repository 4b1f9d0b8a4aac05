"""Point the ROS wheels' CMake exports at this interpreter (idempotent).

The wheels were built on a host whose Python lived in /opt/python/cp311-cp311; their exported
CMake files name that path, and CMake refuses include paths that do not exist.
"""
import glob
import os
import sys
import sysconfig

import numpy

venv = sys.argv[1] if len(sys.argv) > 1 else sys.prefix
replacements = {
    "/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include": numpy.get_include(),
    "/opt/python/cp311-cp311/include/python3.11": sysconfig.get_paths()["include"],
}
changed = 0
for path in glob.glob(os.path.join(venv, "share", "*", "cmake", "*.cmake")):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    new = text
    for old, repl in replacements.items():
        new = new.replace(old, repl)
    if new != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
        changed += 1
print(f"[setup] cmake path fix: {changed} file(s) rewritten")

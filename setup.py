"""Builds the optional C accelerator lambdascope._scan (everything else is in pyproject.toml).

Without a C compiler the build goes on without it: lambdascope.logscan then does the same
scanning with numpy and regexes, more slowly.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("lambdascope._scan", ["lambdascope/_scan.c"], optional=True),
    ]
)

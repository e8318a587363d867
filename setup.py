"""Build settings that pyproject.toml cannot hold: the optional compiled JSON column reader.

Without a C compiler the build skips it and lveval reads JSON with msgspec alone
(same results, slower on large files).
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("lveval.io._jsoncols", ["src/lveval/io/_jsoncols.c"], optional=True,
                             extra_compile_args=["-O2"])])

"""Build settings that pyproject.toml cannot hold: the optional compiled helpers.

``_jsoncols`` reads JSON box records into columns; ``_rle`` validates, measures and
intersects compressed RLE masks in bulk. Without a C compiler the build skips them
and lveval computes the same results with msgspec, numpy and pycocotools (slower).
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("lveval.io._jsoncols", ["src/lveval/io/_jsoncols.c"], optional=True,
                             extra_compile_args=["-O2"]),
                   Extension("lveval.io._rle", ["src/lveval/io/_rle.c"], optional=True,
                             extra_compile_args=["-O2"]),
                   Extension("lveval._curves", ["src/lveval/_curves.c"], optional=True,
                             extra_compile_args=["-O2", "-ffp-contract=off"])])

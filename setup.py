"""Builds the optional compiled shape builder (forwarder/normalize/_native.pyx); metadata is in pyproject.toml.

Without a C compiler the build goes on without it and the pure-Python shape programs run instead."""

from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = cythonize(
    [Extension("forwarder.normalize._native", ["forwarder/normalize/_native.pyx"])],
    compiler_directives={"language_level": 3},
)
for extension in extensions:
    extension.optional = True  # set after cythonize, which does not carry it over from the template

setup(ext_modules=extensions)

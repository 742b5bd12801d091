"""The configs shipped with sf-forwarder: the installed package ``forwarder.bundled`` is this folder
(pyproject.toml [tool.setuptools] package-dir). Code finds the files through forwarder/packaged.py."""

"""AstraForge: a CI-native AI fixer."""

from importlib import metadata

try:  # the version of the installed distribution: the release's git tag
    __version__ = metadata.version("astraforge")
except metadata.PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0.0.0+unknown"

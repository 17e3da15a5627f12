"""Grid services: unit, responsibility and evaluation grid codes and topology checks."""

#!/usr/bin/env bash
# Print the best working Python interpreter: 3.12 when present (pygeoapi 0.24 needs it), else python3.
for p in python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 /usr/bin/python3.12 python3; do
  if "$p" -c 'import sys, venv; assert sys.version_info >= (3, 11)' >/dev/null 2>&1; then
    command -v "$p"; exit 0
  fi
done
echo "cityops: no Python >= 3.11 found" >&2; exit 1

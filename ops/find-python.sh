#!/usr/bin/env bash
# Print a working Python >= 3.12 (pygeoapi 0.24 needs it): python3.12/3.13/python3 when one is,
# else a uv-managed CPython 3.12 (Debian 12 ships 3.11; uv fetches a standalone 3.12 build).
ok() { "$1" -c 'import sys, venv; assert sys.version_info >= (3, 12)' >/dev/null 2>&1; }
for p in python3.12 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 /usr/bin/python3.12 \
         python3.13 /usr/bin/python3.13 python3; do
  if ok "$p"; then command -v "$p"; exit 0; fi
done
boot="$(dirname "$0")/../var/bootstrap"
if [ ! -x "$boot/bin/uv" ]; then
  mkdir -p "$(dirname "$boot")"
  python3 -m venv "$boot" >&2 && "$boot/bin/pip" install -q uv >&2 || {
    echo "cityops: Python >= 3.12 is required and could not be installed" >&2; exit 1; }
fi
"$boot/bin/uv" python install 3.12 >&2 && "$boot/bin/uv" python find 3.12 && exit 0
echo "cityops: Python >= 3.12 is required (install python3.12, or let uv fetch it)" >&2
exit 1

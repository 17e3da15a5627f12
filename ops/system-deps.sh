#!/usr/bin/env bash
# Install the Debian packages cityops needs when they are missing: Python venv support,
# PostgreSQL with PostGIS, GDAL's command-line tools (ogrinfo: the OAPIF client tests),
# redis-server (shared rate limits; `cityops redis up` runs a project-local one), mosquitto
# (MQTT telemetry).
# Idempotent; a second run installs nothing.
set -euo pipefail

need=()
have_postgis() { ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; }
pg_major() { ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1; }

if ! have_postgis; then
  major="$(pg_major)"
  if [ -n "$major" ]; then need+=("postgresql-${major}-postgis-3"); else need+=(postgresql postgis); fi
fi
command -v python3 >/dev/null 2>&1 || need+=(python3)
if ! command -v python3.12 >/dev/null 2>&1 && ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  need+=(python3-venv)
fi
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
command -v ogrinfo >/dev/null 2>&1 || need+=(gdal-bin)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)  # MQTT telemetry (`cityops fleet broker up` runs a project-local one)

if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "cityops: missing system packages: ${need[*]} (run as root or install them)" >&2
  exit 1
fi
echo "cityops: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

#!/usr/bin/env bash
# Install the real clients the test suite drives, when missing: GDAL's command-line tools
# (ogrinfo/gdalinfo with the OAPIF, WFS and WMTS drivers), QGIS's Python bindings, Node.js
# (the browser SM2 helper is checked against our SM2), redis-server (rate-limit tests) and
# mosquitto (MQTT telemetry tests).
set -euo pipefail

need=()
command -v ogrinfo >/dev/null 2>&1 || need+=(gdal-bin)
/usr/bin/python3 -c 'import qgis.core' >/dev/null 2>&1 || need+=(python3-qgis)
command -v node >/dev/null 2>&1 || need+=(nodejs)            # SM2 helper interop (sm-crypto)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)  # throwaway rate-limit Redis
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)  # throwaway MQTT broker (telemetry tests)

if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "cityops: missing test packages: ${need[*]} (run as root or install them)" >&2
  exit 1
fi
echo "cityops: installing ${need[*]} (test clients)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null

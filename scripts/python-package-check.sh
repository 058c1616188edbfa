#!/usr/bin/env bash
# Checks the Python package as a user installs it: `pip install .` into a fresh virtual
# environment, then an import, a detection on generated arrays, the package's tests against
# the installed copy (not the build tree) and the example experiment (examples/notebook.py).
#   scripts/python-package-check.sh [VENV_DIR]     (default: build/pip-check)
# Extra pip arguments in RINGSCAN_PIP_ARGS, e.g. to build without the CUDA backend:
#   RINGSCAN_PIP_ARGS="--config-settings=cmake.define.RINGSCAN_CUDA=OFF"
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-build/pip-check}
rm -rf "$venv"
python3 -m venv "$venv"
# shellcheck disable=SC2206  # word splitting of the extra arguments is intended
extra=(${RINGSCAN_PIP_ARGS:-})
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${extra[@]}" . pytest matplotlib networkx
# The tests compare with the command where a build has one.
[[ -x build/ringscan ]] && export RINGSCAN_CLI="$PWD/build/ringscan"
# From outside the source tree, so that `import ringscan` is the installed package.
cd "$venv"
bin/python - <<'PY'
import ringscan
data = ringscan.generate(accounts=2000, dim=32, seed=3)
result = ringscan.detect(data["account"], data["embedding"], time=data["time"])
metrics = ringscan.evaluate(result, data["label"], account_ids=data["account_ids"])
print(f"python-package-check: ringscan {ringscan.__version__} from {ringscan.__file__}: "
      f"{len(result.rings)} rings, ring recall {metrics['ring_recall']:.2f}")
assert len(result.rings) > 0 and metrics["ring_recall"] >= 0.9, metrics
PY
bin/python -m pytest -q -p no:cacheprovider "$OLDPWD/python/tests"
# The example experiment, small, without a display.
bin/python "$OLDPWD/examples/notebook.py" --accounts 2000 --out sweep.png

#!/usr/bin/env bash
# The main job end to end on an embedded default: train a tiny model, track it, push it to a
# local-directory remote, clone the repository elsewhere, pull, and show the result.
set -euo pipefail
work=$(mktemp -d "${TMPDIR:-/tmp}/moma-demo.XXXXXX")
export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.com
export GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.com
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

cd "$work"
git init -q --initial-branch=main project && cd project
step moma init
python - <<'PY'
import os, joblib
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier
X, y = load_iris(return_X_y=True)
os.makedirs("data", exist_ok=True)
for i, row in enumerate(X[:30]):
    with open(f"data/sample_{i:02d}.csv", "w") as fh:
        fh.write(",".join(map(str, row)) + "\n")
clf = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
joblib.dump(clf, "model.pkl")
with open("metrics.json", "w") as fh:
    fh.write('{"accuracy": %.4f}' % clf.score(X, y))
PY
step moma add data
step moma models:add iris model.pkl --metrics-file metrics.json --param max_depth=3
step git commit -qm "Train first model"
step moma models:tag iris:1 production
step moma remote add storage "$work/remote" --default
step git commit -qam "Add remote"
step moma push
cd "$work"
step git clone -q project clone  # stage tags travel with the clone
cd clone
step moma pull
step moma status
step moma models:list
step moma models:show iris:production
step cmp model.pkl ../project/model.pkl
step diff -r data ../project/data
echo "model.pkl and data/ came back byte-identical in $work/clone"

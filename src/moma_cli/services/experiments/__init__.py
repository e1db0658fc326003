"""Experiments without a commit per run (`moma exp`): `running` (run the pipeline with
overridden params in a throwaway work tree, record it on a hidden ref), `queue` (runs
waiting, then run N at once), `records` (list, apply, branch and remove what was recorded)
and `sharing` (push and pull them).

An experiment is a commit on `refs/moma/exps/<base commit>/<name>` whose parent is the commit
it ran on; it holds the params files, `moma.lock`, metrics files and pointers that the run
changed, and its message's trailers carry the params, metrics, duration and exit status, so
`moma exp show` reads everything from one `git for-each-ref`. Outputs are in the shared cache.
"""

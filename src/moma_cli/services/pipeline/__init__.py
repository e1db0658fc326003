"""Reproducible pipelines, one module per verb group: `loading` (stages from `.moma.yaml`,
the DAG, `moma dag`), `running` (`moma run` and executing one stage; `notebook` for a
notebook stage), `reproducing` (`moma repro`), `staleness` (why a stage must run,
restoring its outputs), `scheduling` (stale stages in dependency order, `-j` commands at
once), `executors` (local threads or a Dask cluster), `verifying` (`moma repro --verify`)
and `lineage_query` (`moma lineage`).

Stages live in `.moma.yaml` (written by people); `moma.lock` (written by moma, through
`services/lockfile.py`) records what each stage last ran with: the oid of every dependency
and output, parameter values, metric values, the code commit and the environment. A stage
re-runs when a hash, a parameter or its command differs from the lock; never because of a
modification time. Stage commands and notebooks come from a committed file, so they are only
ever run by an explicit `moma run` / `moma repro`.
"""

"""`moma import-dvc`, one module per job: `planning` (the DVC files read strictly, where each
out's bytes are, changing nothing), `remotes` (DVC remotes as moma remotes, credentials
left out), `objects` (the bytes, verified against DVC's md5: the workspace, DVC's cache, or
a DVC remote copied into a moma remote), `locking` (moma.lock entries from dvc.lock) and
`importing` (`import_dvc`: carrying the plan out and staging it in git).

The formats themselves are read in `core/dvc.py`, `core/dvc_pipeline.py` and
`core/dvc_config.py`: a clone writes them, so nothing there is trusted before it is checked.
"""

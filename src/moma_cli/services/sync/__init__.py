"""Moving objects between cache and remote, one module per job: `results` (what a transfer
reports), `remote_session` (opening a remote, the transfer pool size), `planning` (which
oids a set of pointers needs), `pushing` (`moma push`, the pre-push hook, publishing a
tagged version), `fetching` (`moma fetch` and `moma pull`) and `remote_status`
(`moma status -r`).

Order matters for directories: a manifest is uploaded only after every file it lists is on
the remote, so a remote never holds a listing whose files are missing; fetch downloads the
manifest first (it says what else to fetch), then the files. Every download is verified
against its oid before it enters the cache (cache.Batch.add_stream).
"""

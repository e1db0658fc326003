"""The git-native model registry, one module per job: `model_version` (the values),
`reading` (versions from history, stages and semvers from the tags), `resolving`
(references and listings), `registering`, `tagging` (GTO stage and semver tags),
`comparing`, `model_files`, `index` (the cache of history reads under `.moma/`) and
`summary` (what listings and stage lookups need of a full read, beside it).
Tags follow GTO's grammar (`core/tags.py`), so GTO, DVC and moma read the same registry.
Nothing here ever unpickles a model.
"""

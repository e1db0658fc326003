"""Bytes by oid: the local cache, the stat cache, remotes and transfers."""

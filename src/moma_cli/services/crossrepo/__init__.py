"""Data and models of other repositories, as DVC's ls / get / import / update: `clones`
(a cached clone of a source, opened with this machine's cache), `listing` (`moma ls`) and
`getting` (`moma get`, `moma import`, `moma update`); `sync.fetching` pulls an import
through its source's remote."""

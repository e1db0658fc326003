"""Pure logic: no git, no network, no filesystem writes."""

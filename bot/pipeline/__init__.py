"""Small stages, one job each: group, mute, notify, enrich, recover; ingest composes them."""

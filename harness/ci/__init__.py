"""Tools for CI pipelines and QA around matrix documents: the regression gate (`compare`), the
pinned matrix (`golden`), shards across machines (`shard`, `merge`) and outcome policies.

They work on matrix JSON documents (README: 'The matrix JSON'), never on a live run, so a
baseline from last week, a golden file and a merged set of shards are all compared alike."""

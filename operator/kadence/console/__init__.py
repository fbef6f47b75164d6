"""`kadence console`: a local web console of the loop, one page per model, live from watches.

- `views`: pure functions from the watched objects to what the pages show (view models,
  Vega-Lite chart specs, the lineage graph) and to what each guarded action changes;
- `watch`: the kubernetes client's watches of the six kinds, kept in one in-memory snapshot;
- `server`: the aiohttp application (pages, JSON, server-sent events, reports read from S3
  with the namespace's own storage identity, guarded actions);
- `command`: the `kadence console` entry point.
"""

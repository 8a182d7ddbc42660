"""Tabular benchmarks shipped with the harness (`problem=tabular problem.table=<name>`), each a
`<name>.parquet` + `<name>.json` pair built by `harness-tabulate`; how to rebuild each is in the
README (Tabular benchmarks) and in its JSON's `command`."""

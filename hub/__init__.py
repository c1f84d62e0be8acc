"""The hub: ingest -> store -> aggregate -> reports (cases, alerts, API and exports come later).

Where each step lives:

    serve.py      `pingjia hub serve`: the link to the broker and the writer thread (group, commit, ack)
    prepare.py    decode and authenticate a message, without the store (in worker processes: preparers.py)
    ingest.py     one message in: by channel to ratings.py, telemetry.py and clock.py; refusals recorded
    ratings.py    a batch against the stored chain, stored once; amends; the watermark
    clock.py      placing records in time (anchors per boot) and the site's days
    telemetry.py  status, health and events of terminals
    store.py      the writer's SQL during ingest (rows, daily counts, watermarks, rejects, anchors)
    writer.py     the single writer: one connection, one thread, every write one transaction
    registry.py   terminals and staff: the write functions `hub add-device` / `add-staff` run
    schema.py     migrations, and the one place they run (`hub serve`, `hub migrate`)
    queries.py    every read, on a read-only connection (reports, audit, `hub devices`, `hub rejects`)
    report.py     figures from the daily counts; audit.py: every record checked on its own
    db.py         SQLite / PostgreSQL connections; rows.py: table rows as values; errors.py: the tree
    cli.py        `pingjia hub ...` and `pingjia report`; workers.py: `hub serve --workers N`
"""

"""`cond-lsgan report`: a run (and its evaluation) as one self-contained HTML page; `--html` of
`evaluate generator` and `experiment mog` writes their results the same way.

A run folder holds metrics.jsonl, a log and a PNG per sample grid; the page puts them
side by side: the resolved config, loss and images/s curves, the grids over time, and,
given the JSON of `evaluate generator`, readability and diversity per class with the
best and worst classes as pictures. Images are embedded as data URIs and the curves are
inline SVG drawn here, so the file opens anywhere, offline, and can be mailed or archived.

    run_files.py   what a run folder holds, read tolerantly (a run still writing, a DDP run, damaged files)
    svg.py         line and scatter charts as inline SVG (what cannot be drawn is a gap)
    page.py        the page: HTML pieces, the grid slider, the file written atomically
    evaluation.py  an `evaluate generator` report read and shown (also alone: `evaluate generator --html`)
    run_report.py  the run's page, put together (`write_run_report`)
    mog_page.py    the page of an `experiment mog` folder (`experiment mog --html`)

A value the page cannot use (NaN, 1.7e308, a step of 400 digits, a config section that is
no table, a PNG header claiming 20000 x 20000 pixels, a share outside [0, 1]) is left out,
noted on the page and counted in one warning line on stderr; the rest is drawn, exit 0.

Nothing here imports torch: a report of a running job costs the machine little.
"""

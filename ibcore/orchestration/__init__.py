"""Orchestration layer: list the runs of a profile (jobs), compute them (compute, on the executor
with one lock file per run), then render the notebooks that only read them (render, timings) and
build the book (book); pipeline and prefetch are the two commands."""

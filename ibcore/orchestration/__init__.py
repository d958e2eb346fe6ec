"""Orchestration layer: the pipeline (compute every run of a profile, then render the
notebooks and build the book), the training phase and the Dask executor."""

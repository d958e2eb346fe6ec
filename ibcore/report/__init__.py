"""Report layer: claims, plotting, tables and page furniture, and the notebooks' parameter
checks. Reads records and experiment summaries; trains nothing."""

"""Experiments layer: each module declares the runs of one figure or table from a profile's
parameters and summarises their records (Figure 1, Table 1, the beta sweep, the information
plane, Figure 3, the compression study, the known-truth battery). Imports only ``ibcore.core``."""

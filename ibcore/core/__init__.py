"""Core layer: estimators (MINE, AA-MINE, DV bound), critics, exact MI and its bounds, models,
data, the layer-by-layer trainer and the run records. Imports nothing from the layers above."""

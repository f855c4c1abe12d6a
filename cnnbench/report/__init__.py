"""Local reports of runs: comparison table, training curves, confusion matrix and prediction grid."""

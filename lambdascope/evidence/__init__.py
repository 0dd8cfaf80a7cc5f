"""Evidence about a function's size beyond its REPORT lines (measured duration curves)."""

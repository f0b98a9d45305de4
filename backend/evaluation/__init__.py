"""Stage 6: metrics of fused LST against a reference, baselines, breakdowns and the report."""

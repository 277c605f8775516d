"""The local broker's market layer: the synthetic tape, bars, the asset universe, the calendar and the clock."""

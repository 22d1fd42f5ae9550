"""Durability and scale-out: engine snapshots kept with the offsets they reflect (state dir)."""

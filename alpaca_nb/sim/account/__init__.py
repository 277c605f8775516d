"""The local broker's account layer: orders and their lifecycle, fills, cash, positions, activities, persistence."""

"""`kadence demo`: the closed loop end to end on the sandbox.

`scenario` generates the seeded customer traffic (a premium segment the first model never
saw takes over month by month), `report` keeps the per-month F1 and the events and writes
the plot, the HTML page and demo.json, and `loop` drives the sandbox.
"""

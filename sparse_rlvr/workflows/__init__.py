"""What a user runs end to end: the demos, data preparation, ablations, and the tiny models and
data that let every recipe run on a laptop. Built on the parts below; nothing below imports it."""

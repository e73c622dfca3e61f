"""What every compression method shares: the recipe blocks, the data and hold-out, the teacher and
discriminator, the target, per-stage resume, the time planner, and the one runner (``runner``) that
calls a :class:`~.method.Method`'s stages. No method imports another method's package; shared
pieces live here."""

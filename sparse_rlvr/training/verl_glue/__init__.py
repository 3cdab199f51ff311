"""Everything that touches verl: registrations, the single-pass worker, the trainer, the ``hf``
rollout, the CPU platform, the reward manager, and the one module of verl internals we reach into
(``verl_internals``)."""

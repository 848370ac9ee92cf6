"""Where an installed wheel keeps the workflow packages (generation, training, benchmarks, calibration).

In a source checkout this package is empty and the workflows are the repository's top-level folders;
the wheel build (``hatch_build.py``) puts relocated copies here so that installing harmony-eval adds
no generic top-level ``calibration`` or ``training`` to site-packages. The scoring library never
imports them; only ``harmony_eval.cli`` registers their commands.
"""

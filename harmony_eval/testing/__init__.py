"""Test-data rendering, apart from the scoring library: ``render`` draws anime faces with chosen
region expressions (and knows where it drew every part) with the strokes and part painters of
``draw``; ``sets`` composes collages, contact sheets and the bundled ``examples/``. The tests, the
frozen regression set and the examples use it; no scoring stage imports it.
"""

"""``harmony-eval review``: a local web page where people label the images the evaluator is least
sure of, keyboard first, into ``RUN/labels.csv`` for ``harmony-eval calibrate``.

Needs the ``review`` extra (Starlette + uvicorn): ``pip install "harmony-eval[review]"``. Importing
this package imports neither; ``app`` does.
"""

"""harmony_eval: does a generated anime face show one emotion, with eyes, brows and mouth agreeing?"""

__version__ = "0.1.0"

"""dlnotes: the helper package behind the dlnotes book of executable deep-learning reports.

Import the submodules you need (``dlnotes.env``, ``dlnotes.train``, ``dlnotes.viz``,
``dlnotes.params``, ``dlnotes.report``); importing the package itself does no work.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]

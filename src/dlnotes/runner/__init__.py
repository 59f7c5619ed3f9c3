"""The runner side of dlnotes: chapters, their execution, the book build, the Sphinx extension
and the command line. A chapter's kernel never imports this package; it imports the kernel side
(``dlnotes.params``, ``dlnotes.data``, ``dlnotes.train``, ``dlnotes.viz``, ``dlnotes.report``).
"""

__all__: list[str] = []

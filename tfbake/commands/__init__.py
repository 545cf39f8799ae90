"""One module per CLI command: the function a click command calls, and its rendering."""

"""NiceGUI pages: a shared frame, one module per route, tabs and reusable widgets."""

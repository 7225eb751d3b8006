"""The product's rules as plain functions: no NiceGUI, no HTTP."""

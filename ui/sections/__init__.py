"""The parts of a page that act for the signed-in person through the action helper (`ui/actions.py`): settings
cards and panels. The plain widgets they are built from are in `ui/components/`."""

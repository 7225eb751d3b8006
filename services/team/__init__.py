"""The organization and its people: its settings and rules, its members and roles, the first run that makes it, and
the alerts its admins receive."""

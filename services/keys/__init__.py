"""The organization's API key (generate, rotate, reveal, revoke) and the widget traffic it carries."""

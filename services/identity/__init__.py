"""Who a person is and how they get in: passwords, sessions, second factors (authenticator apps, passkeys, recovery
codes), resets, handoffs between browsers, throttles, invitations (how a person gets an account) and single sign-on."""

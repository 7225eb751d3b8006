"""`/setup`: first run, creates the organization and its first admin."""

from fastapi.responses import RedirectResponse
from nicegui import ui

from services.acting import SCOPES
from services.team import first_run
from ui import actions, session, sign_in_binding, theme
from ui.components.forms import new_password_input


@ui.page('/setup')
async def setup_page() -> RedirectResponse | None:
    form = await actions.read(lambda db: first_run.setup_form(session=db))
    if form is None:
        return RedirectResponse('/login')
    with theme.narrow_card('Set up CX Toolbox', 'Create your organization and its first admin account.'):
        fields = {
            'organization': ui.input('Organization name').props('autofocus maxlength=100').classes('w-full'),
            'name': ui.input('Your name').props('autocomplete=name maxlength=100').classes('w-full'),
            'email': ui.input('Email').props('type=email autocomplete=email maxlength=254').classes('w-full'),
            'password': new_password_input(),
        }
        if form.asks_setup_code:
            fields[first_run.FIELD] = _setup_code_input()
        ip, agent = session.client_ip(), session.user_agent()

        async def create() -> None:
            entered = {name: field.value or '' for name, field in fields.items()}
            next_step = await actions.submit(
                lambda: first_run.set_up(
                    scopes=SCOPES,
                    organization_name=entered['organization'],
                    name=entered['name'],
                    email=entered['email'],
                    password=entered['password'],
                    setup_code=entered.get(first_run.FIELD, ''),
                    ip=ip,
                    user_agent=agent,
                ),
                button=button,
                fields=fields,
            )
            if next_step is not None:
                sign_in_binding.go(session.next_url(next_step))

        fields['password'].on('keydown.enter', create)
        if first_run.FIELD in fields:
            fields[first_run.FIELD].on('keydown.enter', create)
        button = ui.button('Create organization', on_click=create).props('no-caps').classes('w-full')
    return None


def _setup_code_input() -> ui.input:
    """Only the person who started the server knows this code: on a reachable address, it guards the first admin."""
    field = ui.input('Setup code').props('autocomplete=off spellcheck=false maxlength=64').classes('w-full')
    return field.props('hint="Find it in the server\'s start-up output, on the line that begins with Setup code"')

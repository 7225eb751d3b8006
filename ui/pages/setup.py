"""`/setup`: first run, creates the organization and its first admin."""

from fastapi.responses import RedirectResponse
from nicegui import ui

from services.config import current_settings
from services.db import write_scope
from services.identity import auth, sessions
from services.team import first_run
from ui import actions, session, sign_in_binding, theme
from ui.components.forms import new_password_input


@ui.page('/setup')
async def setup_page() -> RedirectResponse | None:
    if not await actions.read(lambda db: auth.setup_needed(session=db)):
        return RedirectResponse('/login')
    with theme.narrow_card('Set up CX Toolbox', 'Create your organization and its first admin account.'):
        fields = {
            'organization': ui.input('Organization name').props('autofocus maxlength=100').classes('w-full'),
            'name': ui.input('Your name').props('autocomplete=name maxlength=100').classes('w-full'),
            'email': ui.input('Email').props('type=email autocomplete=email maxlength=254').classes('w-full'),
            'password': new_password_input(),
        }
        if first_run.setup_code_required(current_settings().host):
            fields[first_run.FIELD] = _setup_code_input()
        ip, agent = session.client_ip(), session.user_agent()

        async def create() -> None:
            form = {name: field.value or '' for name, field in fields.items()}
            handoff = await actions.submit(lambda: _create(form, ip, agent), button=button, fields=fields)
            if handoff is not None:
                sign_in_binding.go(session.start_url(handoff))

        fields['password'].on('keydown.enter', create)
        if first_run.FIELD in fields:
            fields[first_run.FIELD].on('keydown.enter', create)
        button = ui.button('Create organization', on_click=create).props('no-caps').classes('w-full')
    return None


def _setup_code_input() -> ui.input:
    """Only the person who started the server knows this code: on a reachable address, it guards the first admin."""
    field = ui.input('Setup code').props('autocomplete=off spellcheck=false maxlength=64').classes('w-full')
    return field.props('hint="Find it in the server\'s start-up output, on the line that begins with Setup code"')


def _create(form: dict[str, str], ip: str | None, user_agent: str | None) -> str:
    """The organization, its first admin and their first session; returns the session's handoff code."""
    # Before any other work: without the code, nobody gets as far as bcrypt or the database.
    first_run.check_setup_code(host=current_settings().host, entered=form.get(first_run.FIELD, ''))
    auth.validate_first_admin(
        organization_name=form['organization'], name=form['name'], email=form['email'], password=form['password']
    )
    password_hash = auth.hash_password(form['password'])  # bcrypt before the transaction, not inside it
    with write_scope() as db:
        user = auth.create_first_admin(
            session=db,
            organization_name=form['organization'],
            name=form['name'],
            email=form['email'],
            password_hash=password_hash,
            ip=ip,
        )
        return sessions.start(session=db, user=user, ip=ip, user_agent=user_agent)

"""The Dashboard Settings cards as an admin and a member read them: headings, the key's dates, the rotation
choices, subdomain errors that say what is valid, and subdomains that stay current on every open page."""

import asyncio
import re
from collections.abc import Callable

import httpx
from nicegui import ui
from nicegui.testing import User
from sqlmodel import Session, select

from api import create_api_app
from models import ApiKey, Organization, Role
from models import User as Account
from services import events
from services.identity import sessions
from tests import factories
from tests.ui.helpers import (
    ADMIN_EMAIL,
    button,
    from_database,
    in_database,
    open_handoff,
    password_entered_minutes_ago,
    set_up_organization,
)
from ui import open_pages
from ui.session import start_url
from ui.theme import Heading

MEMBER_EMAIL = 'max@example.com'
SUBDOMAIN_RULE = 'Not a valid subdomain: use letters, digits and hyphens, like acme or https://acme.kustomerapp.com'


async def add_member() -> None:
    def add(db: Session) -> None:
        organization = db.exec(select(Organization)).one()
        factories.make_user(db, organization=organization, role=Role.MEMBER, email=MEMBER_EMAIL, name='Max Member')

    await in_database(add)


async def set_up(user: User) -> None:
    """Acme Support with Ada as its admin, on the dashboard with both cards built."""
    await set_up_organization(user)
    await user.should_see('Step 2: Configure Kustomer Subdomains')


async def open_as(browser: User, email: str) -> User:
    """`browser` signed in as `email` through the services (as the sign-in page does), on the dashboard."""

    def start(db: Session) -> str:
        account = db.exec(select(Account).where(Account.email == email)).one()
        return sessions.start(session=db, user=account, ip='192.0.2.8', user_agent='Another browser')

    await open_handoff(browser, start_url(await in_database(start)))
    await browser.should_see(f'Signed in as {email}')
    await browser.should_see('Step 2: Configure Kustomer Subdomains')  # the last card built
    return browser


def text_of(user: User, marker: str) -> str:
    (element,) = user.find(marker=marker).elements
    assert isinstance(element, ui.label)
    return element.text


def field(user: User, marker: str) -> ui.input:
    (element,) = user.find(kind=ui.input, marker=marker).elements
    return element


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait, a bounded number of short steps, for what a person would see a moment later."""
    for _ in range(100):
        if condition():
            return
        await asyncio.sleep(0.05)
    assert condition()


async def generate_key(user: User) -> None:
    button(user, 'Generate API Key').click()
    await user.should_see('API key generated')


async def test_card_titles_are_second_level_headings(user: User) -> None:
    await set_up(user)
    for title in ('Step 1: Generate API Key', 'Step 2: Configure Kustomer Subdomains'):
        (heading,) = user.find(kind=Heading, content=title).elements
        assert heading.tag == 'h2'


async def test_the_key_card_says_when_the_key_was_created_and_last_used(user: User) -> None:
    await set_up(user)
    await generate_key(user)
    assert re.fullmatch(r'Created (just now|\d+ min ago)', text_of(user, 'key-created'))
    # The exact time on hover and focus, in the reader's zone (UTC here: this browser never said another one).
    (created,) = user.find(marker='key-created').elements
    assert re.fullmatch(r'\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC', created.props['title'])
    assert created.props['tabindex'] == '0'  # reached by the keyboard
    assert text_of(user, 'key-last-used') == 'Never used'

    key = field(user, 'api-key').value  # shown once, right after generating
    async with httpx.AsyncClient(transport=httpx.ASGITransport(create_api_app()), base_url='http://test') as api:
        # A widget uses the key. (Its last-used time is written best effort, skipped while another write holds the
        # database, so a busy moment is retried by the next request, as in production.)
        for _ in range(20):
            response = await api.get('/api/v1/organization', headers={'Authorization': f'Bearer {key}'})
            assert response.status_code == 200
            if await from_database(lambda db: db.exec(select(ApiKey.last_used_at)).one()) is not None:
                break

    await user.open('/')
    await user.should_see(marker='key-last-used')
    assert re.fullmatch(r'Last used (just now|\d+ min ago)', text_of(user, 'key-last-used'))
    (last_used,) = user.find(marker='key-last-used').elements
    assert re.fullmatch(r'\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC', last_used.props['title'])


async def test_rotation_offers_seven_days_and_the_old_key_keeps_working_that_long(user: User) -> None:
    await set_up(user)
    await generate_key(user)
    button(user, 'Rotate API Key').click()
    await user.should_see('In 7 days')
    (choice,) = user.find(kind=ui.radio, marker='grace').elements
    assert list(choice.options) == ['Immediately', 'In 1 hour', 'In 24 hours', 'In 7 days']
    assert choice.value == 'Immediately'
    user.find('In 7 days').click()
    user.find(marker='confirm-rotate').click()
    await user.should_see('API key rotated')
    await user.should_see('keeps working until')


async def test_the_revealed_key_wraps_on_a_narrow_screen(user: User) -> None:
    await set_up(user)
    await generate_key(user)
    key_field = field(user, 'api-key')
    # A text area that grows, breaking the key anywhere: on a phone it wraps onto a second line instead of being cut.
    assert key_field.props.get('autogrow') is True
    assert 'word-break: break-all' in key_field.props['input-style']


async def test_reveal_asks_for_the_password_saying_what_for(user: User) -> None:
    await set_up(user)
    await generate_key(user)
    button(user, 'Hide API Key').click()
    await password_entered_minutes_ago(11)
    button(user, 'Reveal API Key').click()
    await user.should_see('Confirm your password to reveal the API key')


async def test_every_invalid_subdomain_field_is_marked_at_once_and_says_what_is_valid(user: User) -> None:
    await set_up(user)
    user.find(marker='subdomain').type('acme support')
    user.find(marker='sandbox-subdomain').type('-sandbox')
    button(user, 'Save').click()
    await user.should_see(SUBDOMAIN_RULE)
    assert field(user, 'subdomain').error == SUBDOMAIN_RULE
    assert field(user, 'sandbox-subdomain').error == SUBDOMAIN_RULE
    for marker in ('subdomain', 'sandbox-subdomain'):
        assert field(user, marker).props.get('aria-invalid') == 'true'
    await user.should_not_see('Subdomains saved')

    user.find(marker='subdomain').clear()
    button(user, 'Save').click()
    await user.should_see('Enter your Kustomer subdomain, like acme or https://acme.kustomerapp.com')
    assert field(user, 'sandbox-subdomain').error == SUBDOMAIN_RULE, 'still marked: it is still wrong'

    user.find(marker='subdomain').type('acme')
    user.find(marker='sandbox-subdomain').clear().type('acme-sandbox')
    button(user, 'Save').click()
    await user.should_see('Subdomains saved')
    assert field(user, 'subdomain').error is None and field(user, 'sandbox-subdomain').error is None


async def test_a_member_reads_the_key_and_subdomains_as_information(user: User) -> None:
    await set_up(user)
    await generate_key(user)
    user.find(marker='subdomain').type('acme')
    button(user, 'Save').click()
    await user.should_see('Subdomains saved')
    await add_member()
    await open_as(user, MEMBER_EMAIL)

    await user.should_see('Ask an admin to rotate or reveal the key.')
    assert (field(user, 'api-key').value or '').startswith('cxt_•')
    assert text_of(user, 'key-last-used') == 'Never used'
    assert text_of(user, 'subdomain-value') == 'acme.kustomerapp.com'
    assert text_of(user, 'sandbox-subdomain-value') == 'Not set'
    await user.should_see('Ask an admin to change them.')
    # No form a member cannot send, and no buttons for steps only an admin can take.
    await user.should_not_see(kind=ui.input, marker='subdomain')
    await user.should_not_see(kind=ui.input, marker='sandbox-subdomain')
    for admin_only in ('Save', 'Reveal API Key', 'Rotate API Key', 'Manage Billing', 'Generate API Key'):
        await user.should_not_see(kind=ui.button, content=admin_only)


async def test_a_member_without_a_key_is_told_who_generates_it(user: User) -> None:
    await set_up(user)
    await add_member()
    await open_as(user, MEMBER_EMAIL)
    await user.should_see('Your organization has no API key yet. Ask an admin to generate one.')
    await user.should_not_see(kind=ui.button, content='Generate API Key')


async def test_the_sidekick_help_tells_a_member_where_the_key_comes_from(user: User) -> None:
    await set_up(user)
    await add_member()
    await open_as(user, MEMBER_EMAIL)
    await user.open('/help/sidekick')
    await user.should_see('ask an admin of your organization for it')


async def test_subdomains_saved_on_one_page_appear_on_the_other_open_pages(
    user: User, create_user: Callable[[], User]
) -> None:
    await set_up(user)
    await add_member()
    member = await open_as(create_user(), MEMBER_EMAIL)
    laptop = await open_as(create_user(), ADMIN_EMAIL)
    assert text_of(member, 'subdomain-value') == 'Not set'

    user.find(marker='subdomain').type('https://ACME.kustomerapp.com/app')
    user.find(marker='sandbox-subdomain').type('acme-sandbox')
    button(user, 'Save').click()
    await user.should_see('Subdomains saved')

    await member.should_see('acme.kustomerapp.com')
    assert text_of(member, 'sandbox-subdomain-value') == 'acme-sandbox.kustomerapp.com'
    await eventually(lambda: field(laptop, 'subdomain').value == 'acme')
    assert field(laptop, 'sandbox-subdomain').value == 'acme-sandbox'


async def test_a_subdomain_someone_is_typing_is_kept_when_another_page_saves(
    user: User, create_user: Callable[[], User]
) -> None:
    await set_up(user)
    laptop = await open_as(create_user(), ADMIN_EMAIL)
    laptop.find(marker='subdomain').type('still-typing')

    user.find(marker='subdomain').type('acme')
    user.find(marker='sandbox-subdomain').type('acme-sandbox')
    button(user, 'Save').click()
    await user.should_see('Subdomains saved')

    await eventually(lambda: field(laptop, 'sandbox-subdomain').value == 'acme-sandbox')  # untouched: as saved
    assert field(laptop, 'subdomain').value == 'still-typing', 'what this person typed is theirs until they save'


async def test_subdomains_saved_by_another_process_appear_on_open_pages(
    user: User, create_user: Callable[[], User]
) -> None:
    await set_up(user)
    await add_member()
    member = await open_as(create_user(), MEMBER_EMAIL)

    def save_elsewhere(db: Session) -> int:
        """What another process's save leaves behind: the row changed, and (on PostgreSQL) a notification."""
        organization = db.exec(select(Organization)).one()
        organization.kustomer_subdomain = 'elsewhere'
        db.add(organization)
        assert organization.id is not None
        return organization.id

    organization_id = await in_database(save_elsewhere)
    saved = events.Event(
        kind=events.EventKind.SUBDOMAINS_SAVED, organization_id=organization_id, user_id=None, origin='other'
    )
    await open_pages.apply_event(saved)

    await member.should_see('elsewhere.kustomerapp.com')
    await eventually(lambda: field(user, 'subdomain').value == 'elsewhere')


async def test_a_key_generated_on_one_page_appears_masked_on_the_other_open_pages(
    user: User, create_user: Callable[[], User]
) -> None:
    await set_up(user)
    await add_member()
    member = await open_as(create_user(), MEMBER_EMAIL)
    laptop = await open_as(create_user(), ADMIN_EMAIL)
    await member.should_see('Ask an admin to generate one')

    await generate_key(user)
    key = field(user, 'api-key').value
    assert key and '•' not in key, 'the page that generated it shows the new key, once'

    await member.should_see(marker='api-key')
    await laptop.should_see('Reveal API Key')
    for other in (member, laptop):
        shown = field(other, 'api-key').value or ''
        assert shown.endswith(key[-4:]) and shown != key, 'elsewhere only masked: revealing asks for a password'
    assert field(user, 'api-key').value == key, "the other pages' refresh leaves the acting page's key alone"

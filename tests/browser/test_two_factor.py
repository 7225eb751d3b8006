"""Two-factor sign-in in a real browser: set up the authenticator app from its QR code page, save the recovery codes,
then sign in with a code on its own step."""

import re
import time

import pytest
from playwright.sync_api import Page, expect
from pyotp.totp import TOTP

from tests.browser.app_process import AppProcess
from tests.browser.helpers import ADMIN, button, sign_in

pytestmark = pytest.mark.browser

SECRET_TEXT = re.compile(r'^([A-Z2-7]{4} ){7}[A-Z2-7]{4}$')  # pyotp's 32-character secret, in groups of 4


def test_set_up_the_app_and_sign_in_with_a_code(admin_app: AppProcess, page: Page) -> None:
    sign_in(page)
    page.goto('/security')
    expect(page.get_by_role('heading', name='Two-factor authentication')).to_be_visible()
    button(page, 'Set up authenticator app').click()
    expect(page.get_by_role('img', name='QR code to scan with your authenticator app')).to_be_visible()
    secret = page.get_by_text(SECRET_TEXT).inner_text().replace(' ', '')
    code_field = page.get_by_label('Authentication code')
    expect(code_field).to_have_attribute('inputmode', 'numeric')
    expect(code_field).to_have_attribute('autocomplete', 'one-time-code')
    code_field.fill(TOTP(secret).now())
    button(page, 'Confirm').click()
    expect(page.get_by_role('heading', name='Save your recovery codes')).to_be_visible()
    codes = page.locator('li').all_inner_texts()
    assert len(codes) == 10 and all(re.fullmatch(r'[a-z2-9]{5}-[a-z2-9]{5}', code) for code in codes)
    with page.expect_download() as download:
        button(page, 'Download').click()
    assert download.value.suggested_filename == 'cx-toolbox-recovery-codes.txt'
    saved = download.value.path().read_text()
    assert all(code in saved for code in codes)
    button(page, 'Done').click()
    expect(page.get_by_text('Authenticator app: on since')).to_be_visible()

    page.get_by_role('banner').get_by_role('button', name='Sign out').click()
    expect(page).to_have_url(f'{admin_app.url}/login')
    page.get_by_label('Email').fill(ADMIN.email)
    page.get_by_label('Password').fill(ADMIN.password)
    button(page, 'Sign in').click()
    expect(page).to_have_url(re.compile(r'/login/code\?redirect_to='))
    page.goto('/')  # the password alone opens nothing
    expect(page).to_have_url(f'{admin_app.url}/login?redirect_to=/')
    page.get_by_label('Email').fill(ADMIN.email)
    page.get_by_label('Password').fill(ADMIN.password)
    button(page, 'Sign in').click()
    page.get_by_label('Authentication code').fill('000000' if TOTP(secret).now() != '000000' else '111111')
    button(page, 'Verify').click()
    expect(page.get_by_role('alert').filter(has_text='Wrong code')).to_be_visible()
    page.get_by_label('Authentication code').fill(TOTP(secret).at(time.time() + 30))
    page.get_by_label('Authentication code').press('Enter')
    expect(page.get_by_text(f'Signed in as {ADMIN.email}')).to_be_visible()
    expect(page).to_have_url(f'{admin_app.url}/')

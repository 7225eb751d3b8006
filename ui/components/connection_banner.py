"""`Connection lost` across the page while the server cannot be reached (its behaviour is in connection_banner.js)."""

from nicegui.element import Element

TEXT = (
    'Connection lost: the server cannot be reached. Nothing you change now is saved, and saving is off until it is '
    'back. This page reloads itself when the server returns.'
)

# Fixed across the top, above the header; dark red on light red (5.7:1) like the save banner.
CSS = """
.cxt-connection-banner { position: fixed; top: 0; left: 0; right: 0; z-index: 7000; display: flex; gap: 12px;
  align-items: center; padding: 12px 16px; background: #ffebee; color: #b71c1c; border-bottom: 2px solid #b71c1c;
  font-size: 16px; line-height: 1.4; box-shadow: 0 2px 6px rgba(0, 0, 0, 0.2); }
body.cxt-offline .q-btn, body.cxt-offline [role=switch] { opacity: 0.6; cursor: not-allowed; }
/* NiceGUI's own corner popup says less than the banner: one message, not two. */
#popup.nicegui-error-popup { display: none !important; }
"""


class ConnectionBanner(Element, component='connection_banner.js'):
    """Shows nothing while the page is connected."""

    def __init__(self) -> None:
        super().__init__()
        self.props['text'] = TEXT

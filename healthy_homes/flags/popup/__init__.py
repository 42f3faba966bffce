"""The clinician pop-up page, for practices whose system shows neither Flags nor cards.

The clinician keeps the page open; when a flagged patient's appointment turns
arrived (or checked in), a dialog offers the housing referral, with the flag's
reasons and the two-click consent, decline and "discuss next time" actions.
"""

from healthy_homes.flags.popup.app import close_streams, create_popup_app
from healthy_homes.flags.popup.state import PopupConfig

__all__ = ["PopupConfig", "close_streams", "create_popup_app"]

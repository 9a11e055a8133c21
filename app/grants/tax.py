"""Default grants for the tax rate table and the clients' tax profiles.

Rates: Admin edits (Admin holds every permission); Manager, Accountant and Reviewer read the
screen and the API; Agent nothing. Tax profiles: Manager and Accountant (own clients, by row
scope) read and edit; Reviewer reads.
"""

from __future__ import annotations

RATE_SCREEN = "TaxRateModelView"
RATE_API = "TaxRateApi"
PROFILE_SCREEN = "ClientTaxProfileView"
PROFILE_API = "ClientTaxProfileApi"

READ_RATES = [("can_list", RATE_SCREEN), ("can_show", RATE_SCREEN), ("can_get", RATE_API), ("can_info", RATE_API)]
READ_PROFILE = [("can_show", PROFILE_SCREEN), ("can_get", PROFILE_API)]
EDIT_PROFILE = READ_PROFILE + [("can_edit", PROFILE_SCREEN), ("can_put", PROFILE_API)]

GRANTS: dict[str, list[tuple[str, str]]] = {
    "Manager": READ_RATES + EDIT_PROFILE,
    "Accountant": READ_RATES + EDIT_PROFILE,
    "Reviewer": READ_RATES + READ_PROFILE,
    "Agent": [],
}

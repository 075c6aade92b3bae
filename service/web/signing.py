"""The web app's signed links; defined in `service.accounts.signing` so the digest below
the web layer builds the very same links."""

from service.accounts.signing import link_key, manager_url, sign_manager, verify_manager

__all__ = ["link_key", "manager_url", "sign_manager", "verify_manager"]

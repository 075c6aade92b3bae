"""The web app's signed links; defined in `service.accounts.signing` so the digest below
the web layer builds the very same links."""

from service.accounts.signing import (
    LinkCheck,
    link_key,
    links_version,
    manager_url,
    sign_link,
    sign_manager,
    verify_link,
    verify_manager,
)

__all__ = ["LinkCheck", "link_key", "links_version", "manager_url", "sign_link", "sign_manager",
           "verify_link", "verify_manager"]

"""`rapport demo`: the whole product against the local sandboxes."""

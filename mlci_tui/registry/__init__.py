"""Model versions: registering artifacts, deploying any version, rolling back,
and the audit trail of every deploy and rollback."""

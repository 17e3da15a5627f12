"""Identity, crypto (SM2/SM3/SM4), permissions, data scope and the audit trail."""

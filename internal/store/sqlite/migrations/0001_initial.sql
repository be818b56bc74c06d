-- Migration 1: signing keys, policies with history, settings.
--
-- Times are INTEGER unix nanoseconds, UTC: exact (time.Equal after a round
-- trip), and they sort correctly, which RFC 3339 text with trimmed
-- fractional seconds does not. Tables are STRICT so that a value of the
-- wrong type is an error instead of being stored as something else.

CREATE TABLE signing_keys (
    id                 INTEGER PRIMARY KEY,
    tenant             TEXT    NOT NULL,
    kid                TEXT    NOT NULL,
    algorithm          TEXT    NOT NULL,
    -- PKCS #8 DER sealed with the store key; the additional data is
    -- tenant || 0x00 || kid, so the value opens only in this row.
    private_key_sealed BLOB    NOT NULL,
    certificate_der    BLOB,
    created_at         INTEGER NOT NULL,
    -- NULL while the key is the active one.
    retired_at         INTEGER,
    UNIQUE (tenant, kid)
) STRICT;

CREATE INDEX signing_keys_by_age ON signing_keys (tenant, created_at, id);

CREATE TABLE policies (
    id                     INTEGER PRIMARY KEY,
    tenant                 TEXT    NOT NULL,
    attestation_type       TEXT    NOT NULL,
    version                INTEGER NOT NULL CHECK (version >= 1),
    -- Empty text records a reset to the built-in default.
    text                   TEXT    NOT NULL,
    jws                    TEXT    NOT NULL,
    signer_certificate_der BLOB,
    created_at             INTEGER NOT NULL,
    -- Also the index that finds the newest version and the next one.
    UNIQUE (tenant, attestation_type, version)
) STRICT;

CREATE TABLE settings (
    key        TEXT    PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- One known value sealed with the store key when the database is created.
-- Opening it at startup turns a wrong key into a clear error then, instead
-- of a failure on the first token signed.
CREATE TABLE key_check (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    sealed BLOB    NOT NULL
) STRICT;

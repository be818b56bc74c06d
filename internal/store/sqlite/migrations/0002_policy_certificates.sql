-- Migration 2: policy-management certificates (isolated mode) and who
-- changed each policy version.

CREATE TABLE policy_certificates (
    id              INTEGER PRIMARY KEY,
    tenant          TEXT    NOT NULL,
    -- Hex SHA-256 of the DER: the certificate's identity.
    certificate_id  TEXT    NOT NULL,
    certificate_der BLOB    NOT NULL,
    added_at        INTEGER NOT NULL,
    added_by        TEXT    NOT NULL,
    UNIQUE (tenant, certificate_id)
) STRICT;

ALTER TABLE policies ADD COLUMN changed_by TEXT NOT NULL DEFAULT '';

-- Signed certificate-management documents already acted on, by hex
-- SHA-256 of the JWS: a document that once added (or removed) a
-- certificate cannot be replayed to do it again later.
CREATE TABLE used_documents (
    tenant   TEXT    NOT NULL,
    hash     TEXT    NOT NULL,
    used_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant, hash)
) STRICT;

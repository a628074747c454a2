CREATE TABLE users (
    id            text        PRIMARY KEY,
    email         text        NOT NULL UNIQUE,
    password_hash bytea       NOT NULL,
    created_at    timestamptz NOT NULL
);

-- Ed25519 signing keys shared by every authsvc replica on this database, so a
-- token signed by any replica verifies with the JWK Set any replica serves.
CREATE TABLE signing_keys (
    kid         text        PRIMARY KEY,
    private_key bytea       NOT NULL, -- PKCS #8 DER
    created_at  timestamptz NOT NULL
);

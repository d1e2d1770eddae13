-- minidns schema 4: API tokens. Only a SHA-256 of each token is kept; the token itself is shown
-- once, when it is made (`minidns token create`).

CREATE TABLE api_tokens (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash   text NOT NULL UNIQUE,      -- hex SHA-256 of the token
    project_id   text NOT NULL,
    role         text NOT NULL CHECK (role IN ('admin', 'member', 'reader', 'ingest')),
    description  text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

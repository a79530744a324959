-- The rates table, read by both backends: compose mounts this file into the official
-- PostgreSQL image's /docker-entrypoint-initdb.d, the native backend runs it itself.
-- It can run more than once.
CREATE TABLE IF NOT EXISTS rates (
    from_code char(3) NOT NULL,
    to_code char(3) NOT NULL,
    rate numeric(12, 6) NOT NULL,
    PRIMARY KEY (from_code, to_code)
);

INSERT INTO rates (from_code, to_code, rate) VALUES
    ('usd', 'gbp', 0.75),
    ('gbp', 'usd', 1.33),
    ('usd', 'eur', 0.86),
    ('eur', 'usd', 1.16)
ON CONFLICT (from_code, to_code) DO NOTHING;

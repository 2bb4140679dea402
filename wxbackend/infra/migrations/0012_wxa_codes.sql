-- Mini Program codes (小程序码) as WeChat drew them: each (page, scene) is asked for once and
-- kept, because getwxacodeunlimit is limited to 5,000 calls a minute per Mini Program.
CREATE TABLE wxa_codes (
    page        text NOT NULL,
    scene       text NOT NULL,
    image       bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (page, scene)
);

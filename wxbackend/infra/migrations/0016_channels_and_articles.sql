-- Channels (频道) of the province, every city (市州) union and every provincial industry union, the
-- self-built channel lifecycle, and the articles cadres publish in them with their review (三审),
-- revisions, images, attachments, daily visits and Official Account publications.

CREATE TABLE channels (
    id              bigserial PRIMARY KEY,
    org_id          bigint NOT NULL UNIQUE REFERENCES orgs (id),
    org_path        ltree NOT NULL,
    slug            text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9-]{1,40}$'),  -- in page addresses
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 40),
    -- common: the platform's common version; self_built: a connected self-built channel, whose
    -- entrance the platform links to (its articles may still be published here).
    mode            text NOT NULL DEFAULT 'common' CHECK (mode IN ('common', 'self_built')),
    entrance_url    text CHECK (entrance_url ~ '^https://'),
    second_review   boolean NOT NULL DEFAULT false,     -- 三审: a second review level before publishing
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX channels_path ON channels USING gist (org_path);

-- A union's application to build its own channel, from the application to retirement.
CREATE TABLE channel_applications (
    id              bigserial PRIMARY KEY,
    channel_id      bigint NOT NULL REFERENCES channels (id),
    status          text NOT NULL CHECK (status IN ('applied', 'approved', 'rejected', 'accepted',
                                                    'connected', 'suspended', 'retired')),
    plan            jsonb NOT NULL,      -- plan, reasons, hosting, MLPS report and police filing
    attachments     jsonb NOT NULL DEFAULT '[]',
    platform_app_id text,                -- the shared platform API app its entrance signs in with
    conformance     jsonb,               -- the last automated conformance report
    created_by      bigint REFERENCES cadres (id),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
-- One application in progress (or one channel connected) per channel at a time.
CREATE UNIQUE INDEX channel_applications_live ON channel_applications (channel_id)
    WHERE status NOT IN ('rejected', 'retired');

CREATE TABLE channel_application_steps (
    id              bigserial PRIMARY KEY,
    application_id  bigint NOT NULL REFERENCES channel_applications (id),
    status          text NOT NULL,
    reason          text NOT NULL DEFAULT '',
    detail          jsonb NOT NULL DEFAULT '{}',
    actor_id        bigint REFERENCES cadres (id),
    actor_org       text NOT NULL DEFAULT '',
    at              timestamptz NOT NULL
);
CREATE INDEX channel_application_steps_app ON channel_application_steps (application_id, id);

-- What each cadre has seen of an application: later steps are shown to them as news.
CREATE TABLE channel_application_reads (
    cadre_id        bigint NOT NULL REFERENCES cadres (id),
    application_id  bigint NOT NULL REFERENCES channel_applications (id),
    seen_step_id    bigint NOT NULL,
    PRIMARY KEY (cadre_id, application_id)
);

-- Images and attachments, stored by the SHA-256 of the bytes kept (never the bytes uploaded:
-- photos lose their EXIF first). ``variants`` names the files of an image: page, thumb.
CREATE TABLE media (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('image', 'attachment')),
    upload_sha256   bytea NOT NULL,          -- of the upload, so the same upload is done once
    org_id          bigint NOT NULL REFERENCES orgs (id),
    org_path        ltree NOT NULL,
    filename        text NOT NULL CHECK (length(filename) BETWEEN 1 AND 120),
    content_type    text NOT NULL,
    bytes           integer NOT NULL,
    width           integer,
    height          integer,
    variants        jsonb NOT NULL,          -- {"page": {"key", "type", "width", "height", "bytes"}, …}
    oa_url          text,                    -- the page variant uploaded to WeChat (uploadimg)
    oa_media_id     text,                    -- as a permanent image (article covers)
    uploaded_by     bigint REFERENCES cadres (id),
    created_at      timestamptz NOT NULL,
    UNIQUE (org_id, upload_sha256)
);

CREATE TABLE articles (
    id              bigserial PRIMARY KEY,
    channel_id      bigint NOT NULL REFERENCES channels (id),
    org_path        ltree NOT NULL,          -- the channel's union, for subtree scoping
    created_by      bigint NOT NULL REFERENCES cadres (id),
    -- The working copy and where it is in review: draft → submitted → (first_passed →) approved
    -- → scheduled | published copy. ``returned``: sent back with a reason.
    stage           text NOT NULL CHECK (stage IN ('draft', 'submitted', 'first_passed', 'approved',
                                                   'scheduled', 'returned', 'live')),
    working         jsonb NOT NULL,          -- title, author, summary, cover, body, attachments
    first_reviewer  bigint REFERENCES cadres (id),
    submitted_by    bigint REFERENCES cadres (id),
    publish_at      timestamptz,             -- a scheduled publication
    scheduled_by    bigint REFERENCES cadres (id),
    live_revision   integer,                 -- the revision the page shows; NULL: not public
    withdrawn_at    timestamptz,
    withdrawn_reason text,
    first_published_at timestamptz,
    published_at    timestamptz,             -- of the live revision
    search_terms    text[] NOT NULL DEFAULT '{}',  -- of the live revision: words and CJK bigrams
    search_text     text NOT NULL DEFAULT '',      -- lower-cased title and text, to confirm a match
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX articles_channel_live ON articles (channel_id, published_at DESC, id DESC)
    WHERE live_revision IS NOT NULL;
CREATE INDEX articles_live ON articles (published_at DESC, id DESC) WHERE live_revision IS NOT NULL;
CREATE INDEX articles_path ON articles USING gist (org_path);
CREATE INDEX articles_due ON articles (publish_at) WHERE stage = 'scheduled';
CREATE INDEX articles_search ON articles USING gin (search_terms) WHERE live_revision IS NOT NULL;

-- What was published, kept unchanged: an edit after publishing makes the next revision.
CREATE TABLE article_revisions (
    article_id      bigint NOT NULL REFERENCES articles (id),
    number          integer NOT NULL CHECK (number >= 1),
    title           text NOT NULL,
    author          text NOT NULL,
    summary         text NOT NULL,
    cover_id        bigint REFERENCES media (id),
    body            text NOT NULL,           -- sanitised HTML
    attachments     jsonb NOT NULL,          -- [media id, …]
    etag            text NOT NULL,
    published_by    bigint REFERENCES cadres (id),
    published_at    timestamptz NOT NULL,
    PRIMARY KEY (article_id, number)
);

-- Every review step, for the article's history (the audit trail holds them too).
CREATE TABLE article_steps (
    id              bigserial PRIMARY KEY,
    article_id      bigint NOT NULL REFERENCES articles (id),
    step            text NOT NULL,
    reason          text NOT NULL DEFAULT '',
    actor_id        bigint REFERENCES cadres (id),
    at              timestamptz NOT NULL
);
CREATE INDEX article_steps_article ON article_steps (article_id, id);

-- Visits, rolled up from Redis once a day (and for today, as it goes): no visitor data kept.
CREATE TABLE article_visits (
    article_id      bigint NOT NULL REFERENCES articles (id),
    day             date NOT NULL,
    views           bigint NOT NULL,
    visitors        bigint NOT NULL,
    PRIMARY KEY (article_id, day)
);
CREATE TABLE channel_visits (
    channel_id      bigint NOT NULL REFERENCES channels (id),
    day             date NOT NULL,
    views           bigint NOT NULL,
    visitors        bigint NOT NULL,
    PRIMARY KEY (channel_id, day)
);

-- An article sent to the Official Account: published (freepublish) or mass-sent (群发).
CREATE TABLE oa_publications (
    id              bigserial PRIMARY KEY,
    article_id      bigint NOT NULL REFERENCES articles (id),
    revision        integer NOT NULL,
    mass_send       boolean NOT NULL,
    status          text NOT NULL CHECK (status IN ('sending', 'publishing', 'published', 'sent',
                                                    'failed')),
    draft_media_id  text,
    publish_id      text UNIQUE,
    msg_id          bigint,
    article_url     text,
    failure         text,
    month           text NOT NULL,            -- China month, for the mass-send allowance
    created_by      bigint REFERENCES cadres (id),
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (article_id, revision, mass_send)
);
CREATE INDEX oa_publications_pending ON oa_publications (updated_at) WHERE status = 'publishing';

-- Meetings (会议): a union's rooms and their bookings, internal meetings (invitations, answers,
-- leave with a substitute, QR sign-in, minutes and action items) and external meetings called by
-- a higher or outside body. Each meeting is a work item: module 'meeting' (closes when the
-- minutes are filed) or 'meeting_external' (notice → instruction → attendees → reply → relay);
-- each action item of the minutes is a work item of module 'meeting_action'.

-- No double booking is the database's rule, not the application's: two bookings of one room
-- whose time ranges overlap cannot both be held, whichever process writes them.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE meeting_rooms (
    id          bigserial PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 40),
    capacity    integer NOT NULL CHECK (capacity BETWEEN 1 AND 5000),
    place       text NOT NULL CHECK (length(place) BETWEEN 1 AND 100),
    created_by  bigint NOT NULL REFERENCES cadres (id),
    created_at  timestamptz NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE meetings (
    id              bigserial PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('internal', 'external')),
    org_id          bigint NOT NULL REFERENCES orgs (id),
    title           text NOT NULL CHECK (length(title) BETWEEN 2 AND 80),
    agenda          text CHECK (length(agenda) <= 3000),
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL CHECK (ends_at > starts_at),
    room_id         bigint REFERENCES meeting_rooms (id),
    place           text NOT NULL CHECK (length(place) BETWEEN 1 AND 100),
    organiser_id    bigint NOT NULL REFERENCES cadres (id),   -- who created or registered it
    item_id         bigint UNIQUE REFERENCES work_items (id),
    status          text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'cancelled', 'closed')),
    minutes         text CHECK (length(minutes) <= 20000),    -- 纪要
    minutes_at      timestamptz,
    -- external meetings: the caller's notice and what the union did with it
    caller          text CHECK (length(caller) <= 80),        -- the body that called it
    leader          text CHECK (length(leader) <= 40),        -- who gave the instruction (批示)
    instruction     text CHECK (length(instruction) <= 2000),
    reply           text CHECK (length(reply) <= 2000),       -- 回执: what the caller was told
    relay           text CHECK (length(relay) <= 5000),       -- 传达: what was relayed …
    relayed_to      text CHECK (length(relayed_to) <= 500),   -- … and to whom
    created_at      timestamptz NOT NULL
);
CREATE INDEX meetings_org ON meetings (org_id, starts_at);

CREATE TABLE meeting_bookings (
    id          bigserial PRIMARY KEY,
    room_id     bigint NOT NULL REFERENCES meeting_rooms (id),
    meeting_id  bigint NOT NULL REFERENCES meetings (id),
    during      tstzrange NOT NULL CHECK (NOT isempty(during)),
    held        boolean NOT NULL DEFAULT true,               -- false: released (meeting cancelled)
    created_at  timestamptz NOT NULL,
    EXCLUDE USING gist (room_id WITH =, during WITH &&) WHERE (held)
);
CREATE INDEX meeting_bookings_meeting ON meeting_bookings (meeting_id);

-- Who is expected: invited cadres (and the substitutes approved in their place) of an internal
-- meeting, the cadres assigned to attend an external one.
CREATE TABLE meeting_invitees (
    meeting_id      bigint NOT NULL REFERENCES meetings (id) ON DELETE CASCADE,
    cadre_id        bigint NOT NULL REFERENCES cadres (id),
    substitute_for  bigint REFERENCES cadres (id),           -- attends in the place of this cadre
    answer          text NOT NULL DEFAULT 'pending' CHECK (answer IN ('pending', 'attend', 'leave')),
    leave_reason    text CHECK (length(leave_reason) <= 500),
    substitute_id   bigint REFERENCES cadres (id),           -- named with the leave request
    leave_status    text CHECK (leave_status IN ('pending', 'approved', 'refused')),
    leave_decided_by bigint REFERENCES cadres (id),
    answered_at     timestamptz,
    signed_in_at    timestamptz,
    late            boolean,                                 -- signed in after the start
    signed_by       bigint REFERENCES cadres (id),           -- by hand: the organiser who did it
    invited_at      timestamptz NOT NULL,
    PRIMARY KEY (meeting_id, cadre_id),
    CHECK ((signed_in_at IS NULL) = (late IS NULL))
);
CREATE INDEX meeting_invitees_cadre ON meeting_invitees (cadre_id);

-- Minutes' attachments and an external notice's: uploaded files kept in the database (minutes
-- are internal papers, never public media).
CREATE TABLE meeting_files (
    id          bigserial PRIMARY KEY,
    org_id      bigint NOT NULL REFERENCES orgs (id),
    meeting_id  bigint REFERENCES meetings (id) ON DELETE CASCADE,   -- NULL until attached
    filename    text NOT NULL,
    content_type text NOT NULL,
    size        integer NOT NULL,
    data        bytea NOT NULL,
    uploaded_by bigint NOT NULL REFERENCES cadres (id),
    uploaded_at timestamptz NOT NULL
);
CREATE INDEX meeting_files_meeting ON meeting_files (meeting_id);

-- 督办事项 of the minutes: each is a work item of module 'meeting_action'.
CREATE TABLE meeting_actions (
    id          bigserial PRIMARY KEY,
    meeting_id  bigint NOT NULL REFERENCES meetings (id),
    what        text NOT NULL CHECK (length(what) BETWEEN 2 AND 500),
    org_id      bigint NOT NULL REFERENCES orgs (id),
    cadre_id    bigint REFERENCES cadres (id),
    deadline    date NOT NULL,
    item_id     bigint NOT NULL UNIQUE REFERENCES work_items (id),
    created_at  timestamptz NOT NULL
);
CREATE INDEX meeting_actions_meeting ON meeting_actions (meeting_id);

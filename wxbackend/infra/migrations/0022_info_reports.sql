-- 信息报送: work information (工作信息) a union submits to the union above. Each level's review
-- is a work item of module 'info_report' at the reviewing union; an adopted report may be passed
-- up (city → province), and the province records what it sent to the national federation and
-- whether that adopted it. Points are fixed when a level adopts (docs/office/info_reports.md).

CREATE TABLE info_reports (
    id                  bigserial PRIMARY KEY,
    org_id              bigint NOT NULL REFERENCES orgs (id),      -- the submitting union
    org_path            ltree NOT NULL,
    submitted_by        bigint NOT NULL REFERENCES cadres (id),
    title               text NOT NULL CHECK (length(title) BETWEEN 5 AND 100),
    body                text NOT NULL CHECK (length(body) BETWEEN 20 AND 10000),
    category            text CHECK (length(category) <= 20),
    event_date          date NOT NULL,
    -- The first submission: lateness counts from it, a resubmission after 退回修改 does not
    -- make a report late (or timely).
    filed_at            timestamptz NOT NULL,
    late                boolean NOT NULL,
    round               integer NOT NULL DEFAULT 1 CHECK (round >= 1),
    updated_at          timestamptz NOT NULL,
    national_passed_at  timestamptz,                               -- 报送全国总工会
    national_passed_by  bigint REFERENCES cadres (id),
    national_adopted_at timestamptz,                               -- 全国总工会采用
    national_adopted_by bigint REFERENCES cadres (id),
    national_points     integer NOT NULL DEFAULT 0 CHECK (national_points >= 0),
    national_note       text CHECK (length(national_note) <= 2000),
    CHECK (national_adopted_at IS NULL OR national_passed_at IS NOT NULL)
);
CREATE INDEX info_reports_org ON info_reports USING gist (org_path);
CREATE INDEX info_reports_mine ON info_reports (org_id, id);
CREATE INDEX info_reports_filed ON info_reports (filed_at);
CREATE INDEX info_reports_national ON info_reports (national_adopted_at)
    WHERE national_adopted_at IS NOT NULL;

-- One review per level. Whether it waits for the reviewer or for the submitter's changes is
-- the item's open step; the verdict (and the points it earned) is written once, when decided.
CREATE TABLE info_report_reviews (
    id              bigserial PRIMARY KEY,
    report_id       bigint NOT NULL REFERENCES info_reports (id) ON DELETE CASCADE,
    org_id          bigint NOT NULL REFERENCES orgs (id),          -- the reviewing union
    level           text NOT NULL CHECK (level IN ('county', 'city', 'province')),
    item_id         bigint NOT NULL UNIQUE REFERENCES work_items (id),
    opened_at       timestamptz NOT NULL,
    verdict         text CHECK (verdict IN ('adopted', 'not_adopted')),
    reason          text CHECK (length(reason) <= 2000),
    points          integer NOT NULL DEFAULT 0 CHECK (points >= 0),
    decided_at      timestamptz,
    decided_by      bigint REFERENCES cadres (id),
    passed_up_at    timestamptz,
    passed_up_by    bigint REFERENCES cadres (id),
    UNIQUE (report_id, org_id),
    CHECK ((verdict IS NULL) = (decided_at IS NULL)),
    CHECK (passed_up_at IS NULL OR verdict = 'adopted')
);
CREATE INDEX info_report_reviews_desk ON info_report_reviews (org_id, id);
CREATE INDEX info_report_reviews_adopted ON info_report_reviews (decided_at) WHERE verdict = 'adopted';

-- Pictures, cleaned by the image pipeline (EXIF and location gone) and kept in the media store
-- by content; a row ties one to its union until a report takes it.
CREATE TABLE info_report_pictures (
    id              bigserial PRIMARY KEY,
    org_id          bigint NOT NULL REFERENCES orgs (id),
    uploaded_by     bigint NOT NULL REFERENCES cadres (id),
    report_id       bigint REFERENCES info_reports (id) ON DELETE CASCADE,
    position        smallint,
    page_key        text NOT NULL,
    thumb_key       text NOT NULL,
    width           integer NOT NULL,
    height          integer NOT NULL,
    bytes           integer NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX info_report_pictures_report ON info_report_pictures (report_id, position);
CREATE INDEX info_report_pictures_loose ON info_report_pictures (uploaded_by) WHERE report_id IS NULL;

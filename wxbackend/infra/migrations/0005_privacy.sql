-- Privacy: message content sealed at rest and kept for a limited time; what a roster check
-- found when a worker filed, kept for the union's reviewers only.

-- A push's content (text typed, location sent…) is sealed with SM4-GCM, column label
-- "wechat_inbound.payload". The clear ``payload`` of rows written before stays readable until
-- the retention sweep seals or drops it; new rows leave it NULL.
ALTER TABLE wechat_inbound ALTER COLUMN payload DROP NOT NULL;
ALTER TABLE wechat_inbound ADD COLUMN payload_enc bytea;
-- Rows whose content the retention sweep still has to drop or seal.
CREATE INDEX wechat_inbound_with_content ON wechat_inbound (received_at)
    WHERE payload IS NOT NULL OR payload_enc IS NOT NULL OR reply IS NOT NULL;

-- Why a filing does not match the roster as filed (e.g. the ID number is already a member's,
-- the rostered phone differs): shown to the reviewing cadres, never to the worker, whose answer
-- is the same whatever the roster holds.
ALTER TABLE applications ADD COLUMN roster_check text
    CHECK (roster_check IN ('no_record', 'name_differs', 'member_withdrawn', 'phone_differs',
                            'linked_elsewhere', 'roster_without_phone', 'matches',
                            'already_member', 'pending_elsewhere'));

-- Why a certification attempt failed, under the union of the record it was compared with (none
-- when no record has the ID number): the union tells a mistyped roster from someone trying ID
-- numbers. No name, ID number or phone; the worker's answer never says any of it.
CREATE TABLE certification_misses (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    account_id  bigint NOT NULL REFERENCES accounts (id),
    member_id   bigint REFERENCES members (id),
    org_id      bigint REFERENCES orgs (id),
    reason      text NOT NULL CHECK (reason IN ('no_record', 'name_differs', 'member_withdrawn',
                                                'phone_differs', 'linked_elsewhere',
                                                'roster_without_phone'))
);
CREATE INDEX certification_misses_org ON certification_misses (org_id, at);
CREATE INDEX certification_misses_member ON certification_misses (member_id) WHERE member_id IS NOT NULL;

CREATE OR REPLACE VIEW application_rows AS
    SELECT a.id, a.kind, a.account_id, a.org_id, a.from_org_id, a.member_id, a.name,
           a.id_number_enc, a.id_number_bidx, a.phone_enc, a.form, a.status, a.reason,
           a.result_org_id, a.reviewed_by, a.reviewed_at, a.due_at, a.created_at,
           o.name AS org_name, o.path AS org_ltree, o.path::text AS org_path,
           f.name AS from_org_name, f.path AS from_org_ltree, f.path::text AS from_org_path,
           (a.status = 'pending' AND a.due_at < now()) AS overdue, m.member_no, a.roster_check
    FROM applications a JOIN orgs o ON o.id = a.org_id
         LEFT JOIN orgs f ON f.id = a.from_org_id
         LEFT JOIN members m ON m.id = a.member_id;

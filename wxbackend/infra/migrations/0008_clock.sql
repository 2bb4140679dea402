-- Member numbers carry the year of issue in China time. The year is the caller's: services take
-- a clock, so the database's own now() no longer decides it.
DROP FUNCTION next_member_no();
CREATE FUNCTION next_member_no(issued_on date) RETURNS text LANGUAGE sql AS $$
    SELECT 'SC' || to_char(issued_on, 'YYYY') || lpad(nextval('member_no_seq')::text, 9, '0')
$$;

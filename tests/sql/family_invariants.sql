-- Invariants of refresh-token families. Each query counts violations; all must be 0.
-- Used by tests/api/crash.rs after killing the server mid-load; runs on PostgreSQL and SQLite.

-- 1. A family has at most one active (unrotated) refresh token.
SELECT COUNT(*) AS violations FROM (
    SELECT family_id FROM refresh_tokens WHERE rotated_at IS NULL GROUP BY family_id HAVING COUNT(*) > 1
) AS two_active;

-- 2. No successor without a rotated parent that names it.
SELECT COUNT(*) AS violations FROM refresh_tokens c
JOIN refresh_tokens p ON c.parent_id = p.id
WHERE p.rotated_at IS NULL OR p.replaced_by IS NULL OR p.replaced_by <> c.id;

-- 3. No rotated token whose successor is missing (a rotation is all or nothing). Retention prunes
--    rotated tokens oldest first, so a successor is never gone while its parent is there.
SELECT COUNT(*) AS violations FROM refresh_tokens p
WHERE p.rotated_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM refresh_tokens c WHERE c.id = p.replaced_by AND c.parent_id = p.id);

-- 4. Every live family has its active token (none lost its last token).
SELECT COUNT(*) AS violations FROM token_families f
WHERE f.revoked_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id AND t.rotated_at IS NULL);

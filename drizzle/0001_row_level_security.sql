-- Row-level security: the second wall between tenants.
--
-- Requests run as `quire_app` (neither table owner nor superuser) inside a transaction that
-- app_enter_tenant() opened for one tenant. Policies compare tenant_id with the transaction-local
-- setting app.tenant_id; when it is unset the comparison is NULL and no row is visible or
-- writable. FORCE makes the policies bind the table owner too; the owner (the role that ran
-- this migration, which the API uses for sign-in and tenant resolution) gets an explicit
-- allow-all policy instead of an implicit bypass.

DO $$ BEGIN
  CREATE ROLE quire_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;--> statement-breakpoint
GRANT quire_app TO CURRENT_USER;--> statement-breakpoint
GRANT USAGE ON SCHEMA public TO quire_app;--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON posts, memberships, invitations TO quire_app;--> statement-breakpoint
GRANT SELECT, UPDATE ON tenants TO quire_app;--> statement-breakpoint
GRANT SELECT ON users TO quire_app;--> statement-breakpoint
REVOKE ALL ON refresh_tokens FROM quire_app;--> statement-breakpoint

CREATE FUNCTION app_current_tenant() RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT nullif(current_setting('app.tenant_id', true), '')::uuid $$;--> statement-breakpoint
CREATE FUNCTION app_current_user() RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT nullif(current_setting('app.user_id', true), '')::uuid $$;--> statement-breakpoint
GRANT EXECUTE ON FUNCTION app_current_tenant(), app_current_user() TO quire_app;--> statement-breakpoint

-- One round trip opens a tenant-scoped request: read the caller's role in the tenant (as the
-- owner, before the switch), then set the transaction-local context and drop to quire_app.
-- Must be called inside a transaction block: every setting is local and ends with it.
CREATE FUNCTION app_enter_tenant(p_tenant uuid, p_user uuid) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  member_role text;
BEGIN
  SELECT m.role::text INTO member_role FROM memberships m
   WHERE m.tenant_id = p_tenant AND m.user_id = p_user;
  PERFORM set_config('app.tenant_id', p_tenant::text, true);
  PERFORM set_config('app.user_id', coalesce(p_user::text, ''), true);
  PERFORM set_config('role', 'quire_app', true);
  RETURN member_role;
END $$;--> statement-breakpoint
REVOKE EXECUTE ON FUNCTION app_enter_tenant(uuid, uuid) FROM PUBLIC;--> statement-breakpoint

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY tenants_owner_all ON tenants TO CURRENT_USER USING (true) WITH CHECK (true);--> statement-breakpoint
CREATE POLICY tenants_isolation ON tenants TO quire_app
  USING (id = app_current_tenant()) WITH CHECK (id = app_current_tenant());--> statement-breakpoint

ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY memberships_owner_all ON memberships TO CURRENT_USER USING (true) WITH CHECK (true);--> statement-breakpoint
CREATE POLICY memberships_isolation ON memberships TO quire_app
  USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());--> statement-breakpoint

ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY invitations_owner_all ON invitations TO CURRENT_USER USING (true) WITH CHECK (true);--> statement-breakpoint
CREATE POLICY invitations_isolation ON invitations TO quire_app
  USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());--> statement-breakpoint

ALTER TABLE posts ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE posts FORCE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY posts_owner_all ON posts TO CURRENT_USER USING (true) WITH CHECK (true);--> statement-breakpoint
CREATE POLICY posts_isolation ON posts TO quire_app
  USING (tenant_id = app_current_tenant()) WITH CHECK (tenant_id = app_current_tenant());--> statement-breakpoint

-- Users are global; under a tenant the app role sees only itself and that tenant's members.
ALTER TABLE users ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE users FORCE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY users_owner_all ON users TO CURRENT_USER USING (true) WITH CHECK (true);--> statement-breakpoint
CREATE POLICY users_tenant_members ON users FOR SELECT TO quire_app USING (
  id = app_current_user()
  OR EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = users.id AND m.tenant_id = app_current_tenant())
);--> statement-breakpoint

ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE refresh_tokens FORCE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE POLICY refresh_tokens_owner_all ON refresh_tokens TO CURRENT_USER USING (true) WITH CHECK (true);
